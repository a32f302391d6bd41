"""The notebook and its files as one zip: `<title>.ipynb` at the top, the files beside it
at their paths. Built in the staging folder (never in memory), removed once sent."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask

from server.files.models import FileKind, NotebookFile
from server.files.store import BlobStore


@dataclass(frozen=True)
class Built:
    path: Path
    cleanup: BackgroundTask


def build(
    store: BlobStore,
    notebook_id: str,
    title: str,
    content: dict[str, Any],
    rows: list[NotebookFile],
) -> Built:
    handle, path = store.stage()
    handle.close()
    paths = {row.path for row in rows}
    name = f"{title}.ipynb"
    while name in paths:  # a file of the same name keeps its name; the notebook steps aside
        name = f"_{name}"
    missing: list[str] = []
    try:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            zf.writestr(name, json.dumps(content, ensure_ascii=False, indent=1))
            for row in rows:
                if row.kind == FileKind.DIRECTORY:
                    zf.writestr(f"{row.path}/", b"")
                    continue
                try:
                    source = store.open(notebook_id, row.sha256)
                except FileNotFoundError:
                    missing.append(row.path)  # storage lost it: the zip says so
                    continue
                with source, zf.open(row.path, "w", force_zip64=True) as target:
                    shutil.copyfileobj(source, target, 1024 * 1024)
            if missing:
                note = "These files' contents are missing from storage:\n" + "\n".join(missing)
                zf.writestr(f"{name}.missing.txt", note)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Built(path, BackgroundTask(path.unlink, missing_ok=True))
