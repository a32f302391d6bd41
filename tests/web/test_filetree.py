"""The Files panel's tree and formatting (static/src/filetree.js), a pure module, run under
Node."""

from __future__ import annotations

import json
from typing import Any

from tests.support_web import run_module


def run(expression: str, *args: Any) -> Any:
    """`expression` over filetree.js's exports (as `t`) and `args`, its value as JSON."""
    return run_module("filetree.js", f"((t) => {expression})(m)", *args)


def entry(
    path: str, size: int = 0, modified: str = "2025-01-01T00:00:00Z", **extra: str
) -> dict[str, Any]:
    return {
        "path": path,
        "kind": "file",
        "size": size,
        "modified": modified,
        "modified_by": "ann",
        "sha256": "",
        **extra,
    }


LISTING = [
    entry("zeta.txt", 5),
    entry("data/raw/b.csv", 10, "2025-01-02T00:00:00Z", modified_by="ben"),
    entry("data/a.csv", 20),
    entry(".local/lib/x.py", 2000, modified_by="runtime"),
    {**entry("empty", 0, "2025-01-03T00:00:00Z"), "kind": "directory"},
    entry("Alpha.txt", 1),
    entry("file10.txt", 1),
    entry("file9.txt", 1),
]


def rows(listing: list[dict[str, Any]], open_state: dict[str, bool] | None = None) -> list[str]:
    shown = run(
        "t.visibleRows(t.buildTree(args[0]), new Map(Object.entries(args[1])))"
        ".map(r => '  '.repeat(r.depth) + r.node.name + (r.node.kind === 'directory' ? '/' : ''))",
        listing,
        open_state or {},
    )
    return list(shown)


def test_folders_are_implied_by_paths_and_listed_first() -> None:
    assert rows(LISTING) == [
        ".local/",
        "data/",
        "  raw/",
        "    b.csv",
        "  a.csv",
        "empty/",
        "Alpha.txt",
        "file9.txt",
        "file10.txt",
        "zeta.txt",
    ]


def test_dot_folders_start_closed_and_any_folder_toggles() -> None:
    assert rows(LISTING, {".local": True, "data": False})[:4] == [
        ".local/",
        "  lib/",
        "    x.py",
        "data/",
    ]
    assert rows([entry("a/b/c.txt")], {"a/b": False}) == ["a/", "  b/"]


def test_folders_roll_up_size_count_and_latest_change() -> None:
    tree = run("t.buildTree(args[0])", LISTING)
    data = next(child for child in tree["children"] if child["name"] == "data")
    assert (data["size"], data["files"], data["modified_by"]) == (30, 2, "ben")
    assert (tree["size"], tree["files"]) == (2038, 7)
    empty = next(child for child in tree["children"] if child["name"] == "empty")
    assert (empty["files"], empty["modified"]) == (0, "2025-01-03T00:00:00Z")


def test_sizes_read_short() -> None:
    sizes = [0, 900, 1536, 12 * 1024, int(3.4 * 2**20), int(1.1 * 2**30), 3000 * 2**30]
    assert run("args[0].map(t.formatSize)", sizes) == [
        "0 B",
        "900 B",
        "1.5 KB",
        "12 KB",
        "3.4 MB",
        "1.1 GB",
        "3000 GB",
    ]
    assert run("t.quotaText(...args)", 512 * 1024, 2**20) == {
        "text": "512 KB of 1.0 MB",
        "fraction": 0.5,
    }


def test_times_without_a_zone_are_utc() -> None:
    now = "Date.parse('2025-01-02T12:00:00Z')"
    ages = run(
        f"args[0].map(iso => t.formatAge(iso, {now}))",
        [
            "2025-01-02T11:59:30",
            "2025-01-02T11:55:00+00:00",
            "2025-01-02T09:00:00Z",
            "2024-12-30T09:00:00",
            None,
        ],
    )
    assert ages == ["just now", "5 min ago", "3 h ago", "2024-12-30", ""]


def test_urls_encode_each_segment() -> None:
    assert (
        run("t.fileUrl('nb1', args[0])", "my data/a #1?.csv")
        == "/api/notebooks/nb1/files/my%20data/a%20%231%3F.csv"
    )
    assert run(
        "[t.joinPath('', 'a'), t.joinPath('x/y', 'a'), t.parentPath('x/y/a'), t.parentPath('a')]"
    ) == [
        "a",
        "x/y/a",
        "x/y",
        "",
    ]


def test_error_detail_is_the_servers_reason() -> None:
    assert run("t.errorDetail(413, args[0])", json.dumps({"detail": "over the quota"})) == (
        "over the quota"
    )
    assert run("t.errorDetail(502, '<html>')") == "HTTP 502"
    assert run("t.errorDetail(0, '')") == "the connection failed"
