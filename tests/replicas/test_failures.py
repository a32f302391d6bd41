"""Two replicas when things go wrong: compaction by both while both append, a replica
SIGKILLed while people type, Redis restarted mid-session, and a row that commits after a
higher-numbered one (several writers: seq order is not commit order)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from pycrdt import Array, Doc, Text
from sqlalchemy import insert
from sqlmodel import Session

from server import protocol
from server.auth import service as auth
from server.collab.models import UpdateRecord
from server.collab.update_log import SqlUpdateLog, StoredDocument
from server.config import Settings
from server.db import make_engine, migrate
from server.notebooks.models import Notebook
from tests.replicas.conftest import Replicas
from tests.support import YClient, eventually, sync_url
from tests.support_pg import PostgresServer, count_rows
from tests.support_redis import RedisServer

WORD = re.compile(r"<[a-z]+\d+>")


def words_in(text: str) -> set[str]:
    return set(WORD.findall(text))


def source(client: YClient) -> str:
    return str(client.cells[0]["source"])


async def stored_text(database_url: str, notebook: str) -> str:
    """The first cell's source as the database holds it (snapshot + every row left)."""
    engine = make_engine(Settings(database_url=database_url))
    try:
        stored = await SqlUpdateLog(engine).load(notebook)
    finally:
        engine.dispose()
    cells = _rebuild(stored).get("cells", type=Array)
    return str(cells[0]["source"]) if len(cells) else ""


def _rebuild(stored: StoredDocument) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for update in [stored.snapshot, *(data for _, data in stored.updates)]:
        if update:
            doc.apply_update(update)
    return doc


async def type_words(
    client: YClient, name: str, count: int, pause: float = 0.003, erase: bool = False
) -> None:
    """Insert `<name0>`, `<name1>`, ... at either end; with `erase`, every third step
    also deletes a character (an update that is only a deletion)."""
    for n in range(count):
        text = client.cells[0]["source"]
        text.insert(len(text) if n % 2 else 0, f"<{name}{n}>")
        if erase and n % 3 == 2:
            await asyncio.sleep(pause)
            at = str(text).find(">") + 1
            if 0 < at < len(text):
                del text[at : at + 1]
        await asyncio.sleep(pause)


async def test_compaction_while_both_replicas_append_loses_nothing(replicas: Replicas) -> None:
    """Four people, two on each replica, type at once; both replicas compact every 20
    updates meanwhile (one at a time per notebook, each folding only what it holds): the
    database ends with every word."""
    pair = replicas
    alice = pair.api(pair.a, "alice")
    notebook = alice.create("compacted by both")
    for name in ("bob", "carol"):
        alice.share(notebook, name, "editor")
    people = [("alice", pair.a), ("bob", pair.b), ("carol", pair.a), ("alice", pair.b)]
    clients = [
        await YClient(sync_url(server, notebook, pair.people[name].token)).connect()
        for name, server in people
    ]
    try:
        await asyncio.gather(
            *(type_words(c, f"w{chr(97 + i)}", 40, erase=True) for i, c in enumerate(clients))
        )
        await eventually(lambda: len({source(c) for c in clients}) == 1, 20)
        expected = source(clients[0])
    finally:
        for client in clients:
            await client.close()
    await eventually(lambda: count_rows(pair.database_url, "snapshots") >= 1)
    assert count_rows(pair.database_url, "update_log") < 200, "compaction did not run"
    assert await stored_text(pair.database_url, notebook) == expected
    pair.check_logs()


async def test_a_replica_killed_while_people_type_loses_no_acknowledged_update(
    replicas: Replicas,
) -> None:
    """bob types on replica a, carol watches on replica b. Replica a is SIGKILLed mid-way:
    every word carol saw is in the database (persist before publish), and bob, moving to
    replica b, sends what a never stored: nothing is lost."""
    pair = replicas
    alice = pair.api(pair.b, "alice")
    notebook = alice.create("typing through a crash")
    alice.share(notebook, "bob", "editor")
    alice.share(notebook, "carol", "viewer")
    bob = await YClient(sync_url(pair.a, notebook, pair.people["bob"].token)).connect()
    carol = await YClient(sync_url(pair.b, notebook, pair.people["carol"].token)).connect()
    typing = asyncio.create_task(type_words(bob, "b", 400, pause=0.002))
    try:
        await eventually(lambda: len(words_in(source(carol))) >= 30)
        await asyncio.to_thread(pair.a.kill)
        seen_by_carol = words_in(source(carol))
        await typing
        stored = words_in(await stored_text(pair.database_url, notebook))
        assert seen_by_carol <= stored, f"lost: {sorted(seen_by_carol - stored)[:5]}"
        # bob's copy still has whatever a never stored; on replica b it is sent again.
        await bob.close()
        bob.url = sync_url(pair.b, notebook, pair.people["bob"].token)
        await bob.connect()
        everything = {f"<b{n}>" for n in range(400)}
        await eventually(lambda: words_in(source(carol)) == everything, 20)
    finally:
        typing.cancel()
        await bob.close()
        await carol.close()
        if pair.a.proc is not None and pair.a.proc.poll() is not None:
            await asyncio.to_thread(pair.a.start)  # for the tests after this one
    assert words_in(await stored_text(pair.database_url, notebook)) == everything


def awareness_of(client_id: int, name: str) -> bytes:
    state = json.dumps({"cursor": name})
    return protocol.encode_awareness_message([protocol.AwarenessEntry(client_id, 1, state)])


def heard_presence(client: YClient, client_id: int) -> bool:
    for frame in client.others:
        message = protocol.parse_message(frame)
        if isinstance(message, protocol.AwarenessUpdate) and any(
            entry.client_id == client_id and not entry.is_removal
            for entry in protocol.parse_awareness_update(message.payload)
        ):
            return True
    return False


async def test_redis_restarted_mid_session_heals(
    replicas: Replicas, redis_server: RedisServer
) -> None:
    """While Redis is down the replicas cannot tell each other anything, and edits go on
    being stored; when it is back each replica reads what it missed from the database,
    presence resumes, and a removal made meanwhile closes the removed person's socket.

    A replica also heals every 30 s anyway: when that lands inside the outage the edits
    cross without Redis and this attempt proves nothing, so it is made again (a new
    notebook, Redis started and killed again), at most three times."""
    for attempt in range(3):
        try:
            await _through_a_redis_restart(replicas, redis_server)
            break
        except CrossedAnyway:
            if attempt == 2:
                raise
        finally:
            if redis_server.proc is not None and redis_server.proc.poll() is not None:
                redis_server.start()  # for the next attempt and the tests after this one
    replicas.check_logs()


class CrossedAnyway(AssertionError):
    """Edits reached the other replica while Redis was down (a periodic heal)."""


async def _through_a_redis_restart(pair: Replicas, redis_server: RedisServer) -> None:
    alice = pair.api(pair.a, "alice")
    notebook = alice.create("through a Redis restart")
    alice.share(notebook, "bob", "editor")
    token = pair.people["alice"].token
    on_a = await YClient(sync_url(pair.a, notebook, token)).connect()
    on_b = await YClient(sync_url(pair.b, notebook, token)).connect()
    bob_on_b = await YClient(sync_url(pair.b, notebook, pair.people["bob"].token)).connect()
    try:
        assert on_a.ws is not None
        await on_a.ws.send(awareness_of(on_a.doc.client_id, "a"))
        await eventually(lambda: heard_presence(on_b, on_a.doc.client_id))
        await type_words(on_a, "before", 3)
        await eventually(lambda: len(words_in(source(on_b))) == 3)

        redis_server.kill()
        await type_words(on_a, "downa", 5)
        await type_words(on_b, "downb", 5)
        await eventually(lambda: "<downa4>" in alice.export(notebook)["cells"][0]["source"])
        await asyncio.sleep(0.5)
        if "<downa0>" in source(on_b):
            raise CrossedAnyway("crossed without Redis: this attempt proves nothing")
        on_b.others.clear()
        removed = alice.client.delete(f"/api/notebooks/{notebook}/members/bob")
        assert removed.status_code == 200, removed.text
        await asyncio.sleep(1.5)  # replica a tries to publish it, and fails

        redis_server.start()  # same port, empty: no message survived
        everything = words_in(source(on_a)) | words_in(source(on_b))
        assert len(everything) == 13
        await eventually(lambda: words_in(source(on_b)) == everything, 15)
        await eventually(lambda: words_in(source(on_a)) == everything, 15)
        # The replicas asked each other who is here when they subscribed again.
        await eventually(lambda: heard_presence(on_b, on_a.doc.client_id), 15)
        # The removal waited for Redis and closed bob's socket on the other replica.
        assert await bob_on_b.wait_closed(timeout=15) == 4403
        # And live fan-out works again.
        await type_words(on_b, "after", 2)
        await eventually(lambda: "<after1>" in source(on_a))
    finally:
        for client in (on_a, on_b, bob_on_b):
            await client.close()


async def test_a_row_committed_after_a_higher_one_is_not_skipped(
    postgres: PostgresServer,
) -> None:
    """Row N commits after row N+1 was read and compacted (two writers): loads, and the
    heal of a replica that has seen N+1, still find it."""
    url = postgres.create_database()
    engine = make_engine(Settings(database_url=url))
    migrate(engine)
    with Session(engine) as db:
        owner = auth.create_user(db, "owner", "owner-password")
        db.add(Notebook(id="nb", title="late", owner_id=owner.id))
        db.commit()
    log = SqlUpdateLog(engine)
    await log.start()
    early, late = Doc(), Doc()
    early.get("t", type=Text).insert(0, "<slow1>")
    late.get("t", type=Text).insert(0, "<fast2>")
    table = UpdateRecord.__table__  # type: ignore[attr-defined]
    try:
        with engine.connect() as slow:
            transaction = slow.begin()
            low_seq = slow.execute(
                insert(table).returning(table.c.seq),
                {"notebook_id": "nb", "data": early.get_update()},
            ).scalar_one()
            high_seq = await log.append("nb", late.get_update(), lambda _: None)
            assert high_seq > low_seq
            # A replica holding only the later row compacts it away.
            written = await log.compact(
                "nb", late.get_update(), late.get_state(), high_seq, {high_seq}
            )
            assert written == high_seq
            transaction.commit()
        stored = await log.load("nb")
        missing = await log.load_missing("nb", written, {high_seq})
    finally:
        await log.stop()
        engine.dispose()
    assert [seq for seq, _ in stored.updates] == [low_seq]
    assert str(_rebuild(stored).get("t", type=Text)) in ("<slow1><fast2>", "<fast2><slow1>")
    assert missing.snapshot is None and [seq for seq, _ in missing.updates] == [low_seq]


async def test_compaction_keeps_a_deletion_it_has_not_seen(postgres: PostgresServer) -> None:
    """Replica b compacts up to its own newest row while replica a's row below it, a pure
    deletion, has not reached b yet: b folds only the rows it holds, so a's deletion
    stays in the log (folding it by number would lose it: a deletion of items the state
    knows adds no structs for the snapshot to keep)."""
    url = postgres.create_database()
    engine = make_engine(Settings(database_url=url))
    migrate(engine)
    with Session(engine) as db:
        owner = auth.create_user(db, "owner", "owner-password")
        db.add(Notebook(id="nb", title="deleted on a", owner_id=owner.id))
        db.commit()
    log = SqlUpdateLog(engine)
    await log.start()
    a, b = Doc(), Doc()
    try:
        a.get("t", type=Text).insert(0, "keep DROP")
        first = await log.append("nb", a.get_update(), lambda _: None)
        b.apply_update(a.get_update())
        before = a.get_state()
        del a.get("t", type=Text)[4:9]
        deletion = await log.append("nb", a.get_update(before), lambda _: None)
        before = b.get_state()
        b.get("t", type=Text).insert(0, ">")
        own = await log.append("nb", b.get_update(before), lambda _: None)
        assert first < deletion < own
        await log.compact("nb", b.get_update(), b.get_state(), own, {first, own})
        stored = await log.load("nb")
    finally:
        await log.stop()
        engine.dispose()
    assert [seq for seq, _ in stored.updates] == [deletion]
    assert str(_rebuild(stored).get("t", type=Text)) == ">keep"
