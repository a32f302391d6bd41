"""What a notebook file's path may be (pure checks)."""

from __future__ import annotations

import pytest

from server.files.paths import BadPath, check_path, moved, parents


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "/etc/passwd",
        "../outside",
        "data/../../outside",
        "data/./x",
        "a//b",
        "trailing/",
        "back\\slash",
        "nul\x00byte",
        "new\nline",
        "escape\x1b[31m",
        "evil\u202etxt.exe",
        "delete\x7f",
        "x" * 256,
        "é" * 128,  # 256 bytes in UTF-8
        "a/" * 600 + "b",
        "zero\u200bwidth",
        "replaced\ufffd",
        "e\u0301.txt",  # decomposed: é must arrive composed (NFC)
        "\ufdd0",
        "private\ue000",
        ".tandem-notes.txt",  # the worker's own temporary names
        "pkg/__pycache__/mod.pyc",
    ],
)
def test_paths_that_are_not_a_notebook_file_are_refused(raw: str) -> None:
    with pytest.raises(BadPath):
        check_path(raw)


@pytest.mark.parametrize(
    "raw",
    ["data.csv", "data/input.csv", ".local/lib/x.py", "résumé 2026.pdf", "x" * 255, "日本/語"],
)
def test_ordinary_paths_pass_as_they_are(raw: str) -> None:
    assert check_path(raw) == raw


def test_parents_and_moves() -> None:
    assert parents("a/b/c.txt") == ["a", "a/b"]
    assert parents("c.txt") == []
    assert moved("a/b/c.txt", "a/b", "z") == "z/c.txt"
    assert moved("a/b", "a/b", "z/y") == "z/y"
