"""The SQL update log on a real SQLite file: sequence numbers are never reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from pycrdt import Doc, Text

from server.collab.update_log import SqlUpdateLog
from server.config import Settings
from server.db import alembic_config, make_engine, migrate


def engine_with_notebooks(tmp_path: Path, ids: list[str]) -> Any:
    engine = make_engine(Settings(data_dir=tmp_path))
    migrate(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO users (id, username, is_admin, created_at) "
            "VALUES (1, 'o', 0, '2026-01-01')"
        )
        for notebook_id in ids:
            connection.exec_driver_sql(
                "INSERT INTO notebooks (id, title, owner_id, created_at, updated_at) "
                f"VALUES ('{notebook_id}', 't', 1, '2026-01-01', '2026-01-01')"
            )
    return engine


def edit(doc: Doc[Any], text: str) -> bytes:
    before = doc.get_state()
    doc.get("t", type=Text).insert(0, text)
    return doc.get_update(before)


async def test_an_update_after_a_compaction_is_never_numbered_below_the_snapshot(
    tmp_path: Path,
) -> None:
    """Regression: with a plain rowid, SQLite reuses the numbers of deleted rows, so once a
    compaction dropped the newest rows the next update got a seq at or below the snapshot's
    `upto_seq`, and a restart before the next compaction skipped it: lost."""
    engine = engine_with_notebooks(tmp_path, ["a", "b"])
    log = SqlUpdateLog(engine)
    await log.start()
    doc: Doc[Any] = Doc()
    other: Doc[Any] = Doc()
    try:
        await log.append("b", edit(other, "b"), lambda _seq: None)
        seqs = [await log.append("a", edit(doc, f"{i}"), lambda _seq: None) for i in range(3)]
        await log.compact("a", doc.get_update(), doc.get_state(), max(seqs))
        later = await log.append("a", edit(doc, "after"), lambda _seq: None)
        assert later > max(seqs)
        stored = await log.load("a")
    finally:
        await log.stop()
        engine.dispose()
    rebuilt: Doc[Any] = Doc()
    assert stored.snapshot is not None
    rebuilt.apply_update(stored.snapshot)
    for _, update in stored.updates:
        rebuilt.apply_update(update)
    assert str(rebuilt.get("t", type=Text)) == "after210"


def test_the_upgrade_numbers_new_updates_above_everything_already_handed_out(
    tmp_path: Path,
) -> None:
    """A database from before the fix: its next seq starts above what its snapshots
    folded in, not above the rows compaction happened to leave."""
    engine = make_engine(Settings(data_dir=tmp_path))
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.exec_driver_sql(
            "INSERT INTO users (id, username, is_admin, created_at) "
            "VALUES (1, 'o', 0, '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO notebooks (id, title, owner_id, created_at, updated_at) "
            "VALUES ('a', 't', 1, '2026-01-01', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO snapshots (notebook_id, upto_seq, data, updated_at) "
            "VALUES ('a', 50, x'00', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO update_log (seq, notebook_id, data) VALUES (3, 'a', x'00')"
        )
    migrate(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO update_log (notebook_id, data) VALUES ('a', x'01')")
        seqs = [row[0] for row in connection.exec_driver_sql("SELECT seq FROM update_log")]
    engine.dispose()
    assert seqs == [3, 51]
