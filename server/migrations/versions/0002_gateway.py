"""Kernel gateway: worker tokens, and each notebook's runtime type.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("worker_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_worker_tokens_token_hash"), ["token_hash"], unique=True
        )
    with op.batch_alter_table("notebooks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("runtime_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("notebooks", schema=None) as batch_op:
        batch_op.drop_column("runtime_type")
    with op.batch_alter_table("worker_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_tokens_token_hash"))
    op.drop_table("worker_tokens")
