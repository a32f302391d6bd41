"""Comment threads on cells, their comments, and mentions.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "comment_threads",
        sa.Column("id", _TEXT(length=32), nullable=False),
        sa.Column("notebook_id", _TEXT(length=32), nullable=False),
        sa.Column("cell_id", _TEXT(length=100), nullable=False),
        sa.Column("anchor_start", sa.LargeBinary(), nullable=True),
        sa.Column("anchor_end", sa.LargeBinary(), nullable=True),
        sa.Column("quote", _TEXT(length=2000), nullable=False),
        sa.Column("cell_text", _TEXT(length=200000), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("resolved_by", _TEXT(length=100), nullable=True),
        sa.Column("created_by", _TEXT(length=100), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.Column("updated_at", _TIME(), nullable=False),
        sa.ForeignKeyConstraint(["notebook_id"], ["notebooks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("comment_threads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comment_threads_notebook_id"), ["notebook_id"])
    op.create_table(
        "comments",
        sa.Column("id", _TEXT(length=32), nullable=False),
        sa.Column("thread_id", _TEXT(length=32), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author", _TEXT(length=100), nullable=False),
        sa.Column("body", _TEXT(length=10000), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.Column("edited_at", _TIME(), nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["thread_id"], ["comment_threads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comments_thread_id"), ["thread_id"])
    op.create_table(
        "mentions",
        sa.Column("comment_id", _TEXT(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("thread_id", _TEXT(length=32), nullable=False),
        sa.Column("read_at", _TIME(), nullable=True),
        sa.ForeignKeyConstraint(["comment_id"], ["comments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["thread_id"], ["comment_threads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("comment_id", "user_id"),
    )
    with op.batch_alter_table("mentions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mentions_thread_id"), ["thread_id"])
        batch_op.create_index(batch_op.f("ix_mentions_user_id"), ["user_id"])


def downgrade() -> None:
    op.drop_table("mentions")
    op.drop_table("comments")
    op.drop_table("comment_threads")
