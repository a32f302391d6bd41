"""Accounts managed from the web: users can be disabled, invite links, account audit rows.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    # A plain ALTER TABLE ADD COLUMN: a batch operation would copy `users` and drop the old
    # table, which SQLite refuses (foreign keys are on) as soon as anyone owns a notebook.
    op.add_column(
        "users", sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "invites",
        sa.Column("id", _TEXT(length=32), nullable=False),
        sa.Column("token_hash", _TEXT(length=64), nullable=False),
        sa.Column("label", _TEXT(length=100), nullable=False),
        sa.Column("created_by", _TEXT(length=100), nullable=False),
        sa.Column("notebook_id", _TEXT(length=32), nullable=True),
        sa.Column("role", _TEXT(length=16), nullable=True),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.Column("expires_at", _TIME(), nullable=False),
        sa.Column("used_at", _TIME(), nullable=True),
        sa.Column("used_by", _TEXT(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invites_token_hash"), ["token_hash"], unique=True)
    op.create_table(
        "account_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", _TEXT(length=100), nullable=False),
        sa.Column("action", _TEXT(length=32), nullable=False),
        sa.Column("target", _TEXT(length=100), nullable=False),
        sa.Column("detail", _TEXT(length=2000), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("account_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_events_target"), ["target"])


def downgrade() -> None:
    op.drop_table("account_events")
    op.drop_table("invites")
    op.drop_column("users", "disabled")  # SQLite 3.35+ drops a column in place
