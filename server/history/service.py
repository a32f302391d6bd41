"""Versions: save, list, read, compare, and the edits that restore one.

Restoring never replaces the document: it computes the changes that turn the current
notebook into the version (delete the cells it lacks, insert the ones it has, rewrite only
the differing parts of each cell's source) and applies them as new updates, so everyone
connected sees them arrive and nobody's socket breaks. Cells untouched since the version
keep their identity, and concurrent typing in them survives.
"""

from __future__ import annotations

import bisect
import difflib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Map, Text
from sqlalchemy import func
from sqlmodel import Session, col, select

from server.collab.room import changes_nothing
from server.collab.schema import text_problem, to_plain
from server.errors import NotFound
from server.files import service as files
from server.files.models import VersionFile
from server.history.models import CellChange, Comparison, Version, VersionKind, VersionPublic
from server.notebooks.document import cells_of
from server.notebooks.models import Notebook

# Versions people make, and the state a restore replaced, keep the notebook's file list
# (restoring brings the files back); automatic checkpoints keep cells only, or every ten
# minutes of a training loop rewriting a model file would keep one more copy of it.
KEEPS_FILES = frozenset({VersionKind.NAMED, VersionKind.BEFORE_RESTORE})


def save(
    db: Session, notebook_id: str, state: bytes, kind: VersionKind, by: str, name: str = ""
) -> Version:
    version = Version(
        id=uuid.uuid4().hex,
        notebook_id=notebook_id,
        kind=kind.value,
        name=name.strip()[:100],
        created_by=by,
        cells=count_cells(state),
        state=state,
        files_recorded=kind in KEEPS_FILES,
    )
    db.add(version)
    db.flush()
    if version.files_recorded:
        files.record(db, notebook_id, version.id)
    db.flush()
    return version


def checkpoint_needless(
    db: Session, notebook_id: str, state: bytes, made_after: datetime | None = None
) -> bool:
    """Whether the notebook's latest checkpoint makes one of `state` needless: it holds all
    `state` holds, or (with `made_after`) it was made after that moment. With several
    replicas holding one room, each sees every edit and would keep each state once per
    replica: the notebook's row is locked first (FOR UPDATE on PostgreSQL; SQLite has one
    writer anyway), so replicas asking at once take turns, and the later one sees the
    earlier one's checkpoint. The lock lasts until the caller's transaction ends."""
    found = db.exec(select(Notebook.id).where(Notebook.id == notebook_id).with_for_update()).first()
    if found is None:
        raise NotFound("no such notebook")
    latest = db.exec(
        select(Version)
        .where(Version.notebook_id == notebook_id, Version.kind == VersionKind.CHECKPOINT.value)
        .order_by(col(Version.created_at).desc())
        .limit(1)
    ).first()
    if latest is None:
        return False
    if made_after is not None and _aware(latest.created_at) > made_after:
        return True
    doc: Doc[Any] = Doc()
    try:
        doc.apply_update(latest.state)
        return changes_nothing(state, doc)
    except Exception:
        return False


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they are UTC (`utcnow`).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def count_cells(state: bytes) -> int:
    """How many cells the stored document has (items of `cells`; no conversion)."""
    doc: Doc[Any] = Doc()
    try:
        doc.apply_update(state)
    except Exception:
        return 0
    return len(cells_of(doc))


def public(version: Version, counts: dict[str, int] | None = None) -> VersionPublic:
    kept = (counts or {}).get(version.id, 0) if version.files_recorded else None
    return VersionPublic(
        id=version.id,
        kind=VersionKind(version.kind),
        name=version.name,
        created_by=version.created_by,
        created_at=version.created_at,
        cells=version.cells,
        files=kept,
    )


def versions_of(db: Session, notebook_id: str) -> list[Version]:
    return list(
        db.exec(
            select(Version)
            .where(Version.notebook_id == notebook_id)
            .order_by(col(Version.created_at).desc())
        )
    )


def file_counts(db: Session, notebook_id: str) -> dict[str, int]:
    """How many files and folders each version of the notebook kept."""
    rows = db.exec(
        select(VersionFile.version_id, func.count())
        .where(VersionFile.notebook_id == notebook_id)
        .group_by(col(VersionFile.version_id))
    )
    return {version_id: count for version_id, count in rows}


def get(db: Session, notebook_id: str, version_id: str) -> Version:
    version = db.get(Version, version_id) if len(version_id) <= 32 else None
    if version is None or version.notebook_id != notebook_id:
        raise NotFound("no such version of this notebook")
    return version


# --- compare ---------------------------------------------------------------------------


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _change(cell: dict[str, Any], **extra: Any) -> CellChange:
    return CellChange(
        id=str(cell.get("id")), cell_type=str(cell.get("cell_type")), source=_source(cell), **extra
    )


def compare(base_id: str, base: dict[str, Any], other_id: str, other: dict[str, Any]) -> Comparison:
    """Cell by cell, matched by id: what `other` added, removed and changed from `base`."""
    before = {str(c.get("id")): c for c in base.get("cells", [])}
    after = {str(c.get("id")): c for c in other.get("cells", [])}
    added = [_change(c) for cell_id, c in after.items() if cell_id not in before]
    removed = [_change(c) for cell_id, c in before.items() if cell_id not in after]
    changed = []
    for cell_id, new in after.items():
        old = before.get(cell_id)
        if old is None:
            continue
        old_source, new_source = _source(old), _source(new)
        outputs_changed = old.get("outputs") != new.get("outputs")
        if old_source == new_source and not outputs_changed and old == new:
            continue
        diff = "".join(
            difflib.unified_diff(
                old_source.splitlines(keepends=True),
                new_source.splitlines(keepends=True),
                fromfile=base_id,
                tofile=other_id,
            )
        )
        changed.append(_change(new, diff=diff, outputs_changed=outputs_changed))
    common_before = [cell_id for cell_id in before if cell_id in after]
    common_after = [cell_id for cell_id in after if cell_id in before]
    kept = set(_stable_order(common_before, common_after))
    moved = [cell_id for cell_id in common_after if cell_id not in kept]
    return Comparison(
        base=base_id,
        other=other_id,
        added=added,
        removed=removed,
        changed=changed,
        moved=moved,
        metadata_changed=base.get("metadata") != other.get("metadata"),
    )


def _stable_order(current: list[str], target: list[str]) -> list[str]:
    """The longest run of `target`'s ids already in the same relative order in `current`:
    these stay put; the others move."""
    position = {cell_id: i for i, cell_id in enumerate(current)}
    sequence = [position[cell_id] for cell_id in target]
    # Longest increasing subsequence, O(n log n), with back links to rebuild it.
    tails: list[int] = []
    tail_at: list[int] = []
    back = [-1] * len(sequence)
    for i, value in enumerate(sequence):
        k = bisect.bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_at.append(i)
        else:
            tails[k] = value
            tail_at[k] = i
        back[i] = tail_at[k - 1] if k > 0 else -1
    keep: list[str] = []
    i = tail_at[-1] if tail_at else -1
    while i != -1:
        keep.append(target[i])
        i = back[i]
    return keep[::-1]


# --- restore ---------------------------------------------------------------------------


def restore_into(doc: Doc[Any], target: dict[str, Any]) -> None:
    """Change `doc` (inside the caller's transaction) until its content is `target`."""
    # jupyter_ydoc builds cells as preliminary Maps; its YNotebook must wrap another Doc,
    # as wrapping this one would open a second transaction on it.
    notebook = YNotebook(Doc())
    cells = cells_of(doc)
    wanted = [c for c in target.get("cells", []) if isinstance(c, dict)]
    wanted_ids = [str(c.get("id")) for c in wanted]
    wanted_set = set(wanted_ids)
    seen: set[str] = set()
    unwanted = []
    for index, cell in enumerate(cells):
        cell_id = str(cell.get("id")) if isinstance(cell, Map) else None
        if cell_id is None or cell_id not in wanted_set or cell_id in seen:
            unwanted.append(index)  # not a cell, not in the version, or a repeated id
        else:
            seen.add(cell_id)
    for index in reversed(unwanted):
        del cells[index]
    current_ids = [str(cell.get("id")) for cell in cells]
    keep = set(_stable_order(current_ids, [i for i in wanted_ids if i in set(current_ids)]))
    for index in reversed(range(len(cells))):
        if current_ids[index] not in keep:
            del cells[index]  # out of order: re-inserted where it belongs (Yjs has no move)
    for position, value in enumerate(wanted):
        present = cells[position] if position < len(cells) else None
        if isinstance(present, Map) and str(present.get("id")) == wanted_ids[position]:
            _update_cell(notebook, present, value)
        else:
            cells.insert(position, notebook.create_ycell(json.loads(json.dumps(value))))
    meta = doc.get("meta", type=Map)
    metadata = target.get("metadata", {})
    if _plain(meta.get("metadata")) != metadata:
        meta["metadata"] = Map(metadata)
    for key in ("nbformat", "nbformat_minor"):
        if key in target and meta.get(key) != target[key]:
            meta[key] = target[key]


def _update_cell(notebook: YNotebook, cell: Map[Any], value: dict[str, Any]) -> None:
    kind = value.get("cell_type")
    if cell.get("cell_type") != kind:
        cell["cell_type"] = kind
    # Whatever the version's cell lacks goes (a key its type does not have, or one that
    # slipped in before the schema guard), except the live execution state of a code cell.
    for key in [key for key in list(cell.keys()) if key not in value]:
        if not (key == "execution_state" and kind == "code"):
            del cell[key]
    if kind == "code" and not isinstance(cell.get("execution_state"), str):
        cell["execution_state"] = "idle"
    if cell.get("id") != value.get("id") and "id" in value:
        cell["id"] = value["id"]
    source = cell.get("source")
    wanted = _source(value)
    if isinstance(source, Text) and text_problem(source, "source") is None:
        _rewrite(source, wanted)
    else:
        cell["source"] = Text(wanted)
    metadata = value.get("metadata", {})
    if _plain(cell.get("metadata")) != metadata:
        cell["metadata"] = Map(metadata)
    if kind == "code":
        outputs = value.get("outputs", [])
        current_outputs = cell.get("outputs")
        if not isinstance(current_outputs, Array) or _plain(current_outputs) != outputs:
            cell["outputs"] = Array(notebook._create_youtputs(outputs))
        if cell.get("execution_count") != value.get("execution_count"):
            cell["execution_count"] = value.get("execution_count")
    if "attachments" in value and cell.get("attachments") != value["attachments"]:
        cell["attachments"] = value["attachments"]


def _plain(value: Any) -> Any:
    """A Map's or Array's content, or None when it is not one or cannot be read."""
    if not isinstance(value, Map | Array):
        return None
    try:
        return to_plain(value)
    except ValueError:
        return None


def _rewrite(text: Text, wanted: str) -> None:
    """Edit `text` into `wanted` touching only what differs (offsets in UTF-8 bytes)."""
    current = str(text)
    if current == wanted:
        return
    matcher = difflib.SequenceMatcher(a=current, b=wanted, autojunk=False)
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        start = len(current[:i1].encode())
        removed = len(current[i1:i2].encode())
        if removed:
            del text[start : start + removed]
        if j2 > j1:
            text.insert(start, wanted[j1:j2])
