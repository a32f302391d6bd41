"""Fencing tokens for a runtime's writes (several replicas).

A notebook's runtime lease comes with an epoch that only grows (`server/gateway/cluster.py`).
The replica that takes the lease under a new epoch records it here (`raise_fence`) before it
writes anything; the update log stores a runtime's write only while the recorded epoch is
not above the one the write was made under (`fenced_out`, inside the transaction that
stores it). So an old owner that stalled, or whose lease was taken while it still trusts
it, cannot write into the document whatever its own clock says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Connection, Engine, select, text

from server.collab.models import RuntimeFence

# Never lowers the fence; records nothing for a notebook that is gone.
_RAISE = """
INSERT INTO runtime_fences (notebook_id, epoch)
SELECT id, :epoch FROM notebooks WHERE id = :notebook
ON CONFLICT (notebook_id) DO UPDATE SET epoch = {greatest}(runtime_fences.epoch, excluded.epoch)
"""


class FencedWrite(Protocol):
    @property
    def notebook_id(self) -> str: ...

    @property
    def fence(self) -> int | None: ...  # the lease epoch it was made under; None: unfenced


def raise_fence(engine: Engine, notebook_id: str, epoch: int) -> None:
    """Record that the notebook's runtime is now owned under `epoch` (or a later one)."""
    greatest = "GREATEST" if engine.dialect.name == "postgresql" else "MAX"
    with engine.begin() as connection:
        connection.execute(
            text(_RAISE.format(greatest=greatest)), {"notebook": notebook_id, "epoch": epoch}
        )


def fenced_out(connection: Connection, writes: Sequence[FencedWrite]) -> set[int]:
    """The positions in `writes` of the fenced ones made under an epoch lower than their
    notebook's fence. Run inside the transaction that stores the others: the fences read
    are locked (FOR SHARE) until it commits, so none is raised in between."""
    notebooks = {write.notebook_id for write in writes if write.fence is not None}
    if not notebooks:
        return set()
    table = RuntimeFence.__table__  # type: ignore[attr-defined]
    rows = connection.execute(
        select(table.c.notebook_id, table.c.epoch)
        .where(table.c.notebook_id.in_(sorted(notebooks)))
        .with_for_update(read=True)
    ).all()
    fences = {str(notebook_id): int(epoch) for notebook_id, epoch in rows}
    return {
        index
        for index, write in enumerate(writes)
        if write.fence is not None and fences.get(write.notebook_id, 0) > write.fence
    }
