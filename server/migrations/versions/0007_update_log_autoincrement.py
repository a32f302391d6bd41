"""Update log sequence numbers are never reused (SQLite AUTOINCREMENT).

Without it SQLite numbers a new row max(rowid) + 1, so once a compaction deleted the
newest rows the next update could get a seq at or below a snapshot's `upto_seq`, and the
next load (snapshot, then seq > upto_seq) would skip it.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's sequence never hands a number out twice
    with op.batch_alter_table(
        "update_log", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass
    # Start above every number handed out so far: what rows are left, and what snapshots
    # folded in (rows that compaction deleted).
    op.execute("DELETE FROM sqlite_sequence WHERE name = 'update_log'")
    op.execute(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'update_log', "
        "max(coalesce((SELECT max(seq) FROM update_log), 0), "
        "coalesce((SELECT max(upto_seq) FROM snapshots), 0))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "update_log", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
