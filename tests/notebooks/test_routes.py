"""Notebooks over REST: create, import, list, rename, delete, export; round trips keep
cells, ids, metadata, outputs and attachments."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
import websockets
from nbformat import v4

from tests.support import CORPUS, Api, Person, ServerProcess, YClient, sync_url


def normalised(nb: dict[str, Any]) -> dict[str, Any]:
    """What a round trip must keep, in a form where list-vs-string sources compare equal."""
    nb = json.loads(json.dumps(nb))

    def join(value: Any) -> Any:
        return "".join(value) if isinstance(value, list) else value

    cells = []
    for cell in nb["cells"]:
        cell["source"] = join(cell["source"])
        if cell.get("attachments") == {}:
            del cell["attachments"]  # jupyter_ydoc drops an empty attachments map
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = join(output["text"])
            for mime, value in output.get("data", {}).items():
                if isinstance(value, list):
                    output["data"][mime] = join(value)
        cells.append(cell)
    return {
        "cells": cells,
        "metadata": nb["metadata"],
        "nbformat": nb["nbformat"],
        "nbformat_minor": nb["nbformat_minor"],
    }


def generated_notebooks() -> dict[str, bytes]:
    """Edge cases the corpus lacks: every 4.x minor, attachments, rich and huge outputs."""
    cases: dict[str, bytes] = {}
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4).decode()
    for minor in range(0, 6):
        nb = v4.new_notebook()
        nb.nbformat_minor = minor
        nb.metadata = {
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
            "custom": {"nested": [1, 2, {"x": None}]},
        }
        nb.cells = [
            v4.new_markdown_cell("# Title $x^2$\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
            v4.new_code_cell(
                "print('hi')",
                execution_count=3,
                outputs=[
                    v4.new_output("stream", name="stdout", text="hi\n"),
                    v4.new_output(
                        "execute_result",
                        data={"text/plain": "42", "text/html": "<b>42</b>"},
                        execution_count=3,
                        metadata={"isolated": True},
                    ),
                    v4.new_output(
                        "display_data",
                        data={"image/png": png},
                        metadata={"image/png": {"width": 10}},
                    ),
                    v4.new_output(
                        "error",
                        ename="ZeroDivisionError",
                        evalue="division by zero",
                        traceback=["\x1b[31mTraceback\x1b[0m", "ZeroDivisionError"],
                    ),
                ],
                metadata={"tags": ["a"], "collapsed": False},
            ),
            v4.new_raw_cell("raw text", metadata={"format": "text/latex"}),
        ]
        if minor >= 5:
            nb.cells[0]["attachments"] = {"img.png": {"image/png": png}}
            nb.cells[0]["source"] += "\n![img](attachment:img.png)"
        else:
            for cell in nb.cells:
                cell.pop("id", None)
        cases[f"v4.{minor}"] = json.dumps(nb).encode()
    big = v4.new_notebook()
    big.cells = [
        v4.new_code_cell(
            f"x = {i}\n" + "# padding\n" * 50,
            outputs=[v4.new_output("stream", name="stdout", text=f"{i}\n" * 200)],
        )
        for i in range(300)
    ]
    cases["large"] = json.dumps(big).encode()
    widgets = v4.new_notebook()
    widgets.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "state": {},
            "version_major": 2,
            "version_minor": 0,
        }
    }
    widgets.cells = [
        v4.new_code_cell(
            "w",
            outputs=[
                v4.new_output(
                    "display_data",
                    data={
                        "application/vnd.jupyter.widget-view+json": {
                            "model_id": "abc",
                            "version_major": 2,
                            "version_minor": 0,
                        },
                        "text/plain": "IntSlider()",
                    },
                )
            ],
        )
    ]
    cases["widgets"] = json.dumps(widgets).encode()
    return cases


CORPUS_FILES = sorted(p.name for p in CORPUS.glob("*.ipynb")) if CORPUS.exists() else []


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_real_world_notebooks_round_trip(name: str, alice: Api) -> None:
    raw = (CORPUS / name).read_bytes()
    response = alice.upload(name, raw)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == Path(name).stem
    exported = alice.export(response.json()["id"])
    nbformat.validate(nbformat.from_dict(exported))
    original = nbformat.reads(raw.decode(), as_version=4)
    if original.nbformat_minor >= 5:
        assert normalised(exported) == normalised(original)
    else:
        # Upgraded to 4.5 on import: same content, plus cell ids.
        ours = normalised(exported)
        for cell in ours["cells"]:
            assert cell.pop("id")
        theirs = normalised(original)
        assert ours["cells"] == theirs["cells"]
        assert ours["metadata"] == theirs["metadata"]


@pytest.mark.parametrize("case", sorted(generated_notebooks()))
def test_generated_notebooks_round_trip(case: str, alice: Api) -> None:
    raw = generated_notebooks()[case]
    response = alice.upload(f"{case}.ipynb", raw, title=f"generated {case}")
    assert response.status_code == 201, response.text
    assert response.json()["title"] == f"generated {case}"
    exported = alice.export(response.json()["id"])
    nbformat.validate(nbformat.from_dict(exported))
    original = json.loads(raw)
    ours, theirs = normalised(exported), normalised(original)
    if original["nbformat_minor"] < 5:
        assert ours["nbformat_minor"] == 5
        for cell in ours["cells"]:
            assert cell.pop("id")
        assert ours["cells"] == theirs["cells"]
    else:
        assert ours == theirs


INVALID = {
    "not json": b"{this is not json",
    "not utf-8": b"\xff\xfe\x00garbage",
    "wrong shape": json.dumps(
        {"cells": "nope", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}
    ).encode(),
    "unknown cell type": json.dumps(
        {
            "cells": [{"cell_type": "spreadsheet", "source": "", "metadata": {}, "id": "a"}],
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
        }
    ).encode(),
    "nbformat 5": json.dumps(
        {"cells": [], "nbformat": 5, "nbformat_minor": 0, "metadata": {}}
    ).encode(),
    # Regression tests: each of these answered 500 with a traceback (RecursionError,
    # UnicodeEncodeError, a NaN that made every later export fail).
    "10,000-level object": (('{"a":' * 10_000) + "1" + ("}" * 10_000)).encode(),
    "100,000-level array": ("[" * 100_000 + "]" * 100_000).encode(),
    "lone surrogate in a source": json.dumps(
        {
            "cells": [{"cell_type": "code", "source": "\ud800", "metadata": {}, "id": "a"}],
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
        }
    ).encode(),
    "lone surrogate in a metadata key": json.dumps(
        {"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {"\ud800": 1}}
    ).encode(),
    "NaN in metadata": b'{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {"x": NaN}}',
    "Infinity in an output": b'{"cells": [], "nbformat": 4, "nbformat_minor": 5, '
    b'"metadata": {"x": [Infinity]}}',
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_uploads_get_422_and_store_nothing(case: str, alice: Api) -> None:
    before = alice.client.get("/api/notebooks").json()
    response = alice.upload("bad.ipynb", INVALID[case])
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    assert "Traceback" not in response.text
    assert alice.client.get("/api/notebooks").json() == before


def test_a_json_body_nested_too_deeply_is_422_and_the_connection_lives(alice: Api) -> None:
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    response = alice.client.post(
        "/api/notebooks", content=deep, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and "Traceback" not in response.text
    nb = alice.create("after the bad body")  # the same kept-alive client goes on
    response = alice.client.patch(
        f"/api/notebooks/{nb}", content=deep, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422) and "Traceback" not in response.text
    assert alice.client.get(f"/api/notebooks/{nb}").status_code == 200


def test_a_newer_4x_minor_is_read_as_45(alice: Api) -> None:
    """nbformat's rule: readers accept newer minors of their major version."""
    future = {
        "nbformat": 4,
        "nbformat_minor": 99,
        "extra_top_level_key": "ignored",
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": [
            {
                "cell_type": "code",
                "id": "a",
                "metadata": {},
                "source": "x = 1",
                "outputs": [],
                "execution_count": None,
                "a_future_field": True,
            },
            {"cell_type": "a_future_type", "id": "b", "metadata": {}, "source": "kept"},
        ],
    }
    response = alice.upload("future.ipynb", json.dumps(future).encode())
    assert response.status_code == 201, response.text
    exported = alice.client.get(f"/api/notebooks/{response.json()['id']}/export").json()
    nbformat.validate(nbformat.from_dict(exported))
    assert [c["cell_type"] for c in exported["cells"]] == ["code", "raw"]
    assert exported["cells"][1]["source"] == "kept"
    assert exported["cells"][1]["metadata"]["tandem"]["original_cell_type"] == "a_future_type"


def test_duplicate_cell_ids_are_repaired_as_jupyter_does(alice: Api) -> None:
    cells = [
        {"cell_type": "markdown", "source": text, "metadata": {}, "id": "same"}
        for text in ("a", "b")
    ]
    raw = json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {}})
    response = alice.upload("dupes.ipynb", raw.encode())
    assert response.status_code == 201, response.text
    exported = alice.export(response.json()["id"])
    assert [c["source"] for c in exported["cells"]] == ["a", "b"]
    assert exported["cells"][0]["id"] == "same"
    assert exported["cells"][1]["id"] != "same"


def test_upload_without_file_field(alice: Api) -> None:
    response = alice.client.post("/api/notebooks", files={"other": ("x.ipynb", b"{}")})
    assert response.status_code == 400
    assert "file" in response.json()["detail"]


def test_old_nbformat_3_is_upgraded(alice: Api) -> None:
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": ""},
        "worksheets": [
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "input": "1+1",
                        "language": "python",
                        "outputs": [],
                        "metadata": {},
                    }
                ],
                "metadata": {},
            }
        ],
    }
    response = alice.upload("old.ipynb", json.dumps(v3).encode())
    assert response.status_code == 201, response.text
    exported = alice.export(response.json()["id"])
    assert exported["nbformat"] == 4
    assert exported["cells"][0]["source"] == "1+1"


async def test_create_list_rename_delete(
    server: ServerProcess, people: dict[str, Person], alice: Api
) -> None:
    notebook = alice.create("first title")
    listed = {nb["id"]: nb for nb in alice.client.get("/api/notebooks").json()}
    assert listed[notebook]["title"] == "first title"
    assert listed[notebook]["role"] == "owner"
    assert listed[notebook]["owner"] == "alice"

    response = alice.client.patch(f"/api/notebooks/{notebook}", json={"title": "renamed"})
    assert response.status_code == 200
    assert alice.client.get(f"/api/notebooks/{notebook}").json()["title"] == "renamed"
    assert alice.client.patch(f"/api/notebooks/{notebook}", json={"title": ""}).status_code == 422
    assert (
        alice.client.patch(f"/api/notebooks/{notebook}", json={"title": "x" * 201}).status_code
        == 422
    )

    # Shared notebooks show up for the member with their role; others do not see them.
    alice.share(notebook, "bob", "commenter")
    bob = Api(server, people["bob"])
    assert {nb["id"]: nb["role"] for nb in bob.client.get("/api/notebooks").json()}[notebook] == (
        "commenter"
    )
    assert bob.client.patch(f"/api/notebooks/{notebook}", json={"title": "no"}).status_code == 403
    erin = Api(server, people["erin"])
    assert notebook not in {nb["id"] for nb in erin.client.get("/api/notebooks").json()}
    assert erin.client.get(f"/api/notebooks/{notebook}").status_code == 404
    assert erin.client.get(f"/api/notebooks/{notebook}/export").status_code == 404

    # Deleting closes open sockets and removes everything.
    async with YClient(sync_url(server, notebook, people["bob"].token)) as member:
        assert alice.client.delete(f"/api/notebooks/{notebook}").status_code == 204
        assert await member.wait_closed(timeout=2) == 4404
    assert alice.client.get(f"/api/notebooks/{notebook}").status_code == 404
    assert bob.client.get(f"/api/notebooks/{notebook}").status_code == 404
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(sync_url(server, notebook, people["alice"].token)):
            pass
    bob.client.close()
    erin.client.close()


def test_export_is_a_download(alice: Api) -> None:
    notebook = alice.create('quotes " and / slashes')
    response = alice.client.get(f"/api/notebooks/{notebook}/export")
    assert response.headers["content-disposition"].startswith("attachment;")
    assert '"' not in response.headers["content-disposition"].split("filename=")[1].strip('"')
    exported = response.json()
    nbformat.validate(nbformat.from_dict(exported))
    assert len(exported["cells"]) == 1


@pytest.mark.parametrize("title", ["two\nlines", "gpj\u202e.exe", "nul\x00here", "tab\there"])
def test_titles_refuse_control_and_direction_characters(title: str, alice: Api) -> None:
    response = alice.client.post("/api/notebooks", json={"title": title})
    assert response.status_code == 400, response.text
    assert "control or text-direction" in response.json()["detail"]
    nb = alice.create("fine")
    response = alice.client.patch(f"/api/notebooks/{nb}", json={"title": title})
    assert response.status_code == 400, response.text
    assert alice.client.get(f"/api/notebooks/{nb}").json()["title"] == "fine"


def test_a_username_with_a_slash_can_be_managed(server: ServerProcess, alice: Api) -> None:
    """Regression test: such a name (a guest's, or one made before '/' was refused) could
    not be given a role or removed, since the members API saw two path segments."""
    from sqlmodel import Session

    from server.auth.models import User
    from server.config import Settings
    from server.db import make_engine

    engine = make_engine(Settings(data_dir=server.data_dir))
    with Session(engine) as db:
        db.add(User(username="north/south", password_hash="!"))
        db.commit()
    engine.dispose()
    nb = alice.create("slashes")
    response = alice.client.put(f"/api/notebooks/{nb}/members/north/south", json={"role": "viewer"})
    assert response.status_code == 200, response.text
    members = {m["username"] for m in alice.client.get(f"/api/notebooks/{nb}/members").json()}
    assert "north/south" in members
    assert alice.client.delete(f"/api/notebooks/{nb}/members/north/south").status_code in (200, 204)


def test_an_upload_over_the_limit_is_413_with_the_numbers(fresh_server: ServerProcess) -> None:
    from tests.support import start_with_alice

    _, api = start_with_alice(fresh_server, TANDEM_MAX_UPLOAD_MB="1")
    big = json.dumps(
        {"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {"pad": "x" * 2_000_000}}
    ).encode()
    response = api.upload("big.ipynb", big)
    assert response.status_code == 413, response.text
    assert (
        "1 MB" in response.json()["detail"] and "TANDEM_MAX_UPLOAD_MB" in response.json()["detail"]
    )
    assert api.client.get("/api/notebooks").json() == []
    api.client.close()
