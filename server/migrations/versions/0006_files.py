"""Notebook files: the manifest, and the file lists versions keep.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "notebook_files",
        sa.Column("notebook_id", _TEXT(length=32), nullable=False),
        sa.Column("path", _TEXT(length=1024), nullable=False),
        sa.Column("kind", _TEXT(length=16), nullable=False),
        sa.Column("sha256", _TEXT(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("executable", sa.Boolean(), nullable=False),
        sa.Column("modified", _TIME(), nullable=False),
        sa.Column("modified_by", _TEXT(length=100), nullable=False),
        sa.ForeignKeyConstraint(["notebook_id"], ["notebooks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("notebook_id", "path"),
    )
    with op.batch_alter_table("notebook_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notebook_files_sha256"), ["sha256"])
    op.create_table(
        "version_files",
        sa.Column("version_id", _TEXT(length=32), nullable=False),
        sa.Column("path", _TEXT(length=1024), nullable=False),
        sa.Column("notebook_id", _TEXT(length=32), nullable=False),
        sa.Column("kind", _TEXT(length=16), nullable=False),
        sa.Column("sha256", _TEXT(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("executable", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id", "path"),
    )
    with op.batch_alter_table("version_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_version_files_notebook_id"), ["notebook_id"])
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("files_recorded", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.drop_column("files_recorded")
    op.drop_table("version_files")
    op.drop_table("notebook_files")
