"""Sharing: share links, the grants they gave, guests, and the audit log.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_guest", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "share_links",
        sa.Column("id", _TEXT(length=32), nullable=False),
        sa.Column("notebook_id", _TEXT(length=32), nullable=False),
        sa.Column("role", _TEXT(length=16), nullable=False),
        sa.Column("label", _TEXT(length=100), nullable=False),
        sa.Column("token_hash", _TEXT(length=64), nullable=False),
        sa.Column("allow_guests", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.Column("expires_at", _TIME(), nullable=True),
        sa.Column("revoked_at", _TIME(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["notebook_id"], ["notebooks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_share_links_notebook_id"), ["notebook_id"])
        batch_op.create_index(batch_op.f("ix_share_links_token_hash"), ["token_hash"], unique=True)
    op.create_table(
        "link_grants",
        sa.Column("link_id", _TEXT(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.ForeignKeyConstraint(["link_id"], ["share_links.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("link_id", "user_id"),
    )
    with op.batch_alter_table("link_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_grants_user_id"), ["user_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notebook_id", _TEXT(length=32), nullable=False),
        sa.Column("actor", _TEXT(length=100), nullable=False),
        sa.Column("action", _TEXT(length=32), nullable=False),
        sa.Column("detail", _TEXT(length=2000), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.ForeignKeyConstraint(["notebook_id"], ["notebooks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_notebook_id"), ["notebook_id"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("link_grants")
    op.drop_table("share_links")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("is_guest")
