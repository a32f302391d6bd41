"""What a file's path inside a notebook may be: pure checks, no I/O.

A path is relative, '/'-separated, made of real names: no empty part, no '.' or '..', no
backslash, NUL or other control character, no invisible or bidirectional formatting (a
name that reads differently than it sorts), no replacement character or noncharacter (a
name that was not valid text), in Unicode's composed form (NFC: one name, one spelling),
each part at most 255 bytes (the limit of every common file system), the whole at most
1024 bytes. Names the worker keeps to itself are refused too: `.tandem-*` (its temporary
files in /content) and `__pycache__` (regenerated on import, never kept).
"""

from __future__ import annotations

import posixpath
import unicodedata

from starlette.convertors import Convertor, register_url_convertor

from server.errors import InvalidInput

MAX_PART_BYTES = 255
MAX_PATH_BYTES = 1024
# Joiners shape emoji and several scripts; every other format character is invisible.
_JOINERS = frozenset("\u200c\u200d")
WORKER_PREFIX = ".tandem-"
CACHE_DIR = "__pycache__"


class BadPath(InvalidInput):
    """A path that is not one of a notebook's files (400); nothing is written."""


def check_path(raw: str) -> str:
    """`raw` as a clean relative path, or BadPath saying why not."""
    if not raw:
        raise BadPath("a file path is needed")
    if raw.startswith("/"):
        raise BadPath("file paths are relative to the notebook's folder (no leading '/')")
    if "\\" in raw:
        raise BadPath("use '/' between folders, not '\\'")
    for char in raw:
        if _refused(char):
            raise BadPath(f"file names cannot hold the character U+{ord(char):04X}")
    if not unicodedata.is_normalized("NFC", raw):
        raise BadPath("file names must be in Unicode's composed form (NFC)")
    if len(raw.encode()) > MAX_PATH_BYTES:
        raise BadPath(f"a file path is at most {MAX_PATH_BYTES} bytes")
    for part in raw.split("/"):
        if part in ("", ".", ".."):
            raise BadPath("a file path cannot have empty, '.' or '..' parts")
        if len(part.encode()) > MAX_PART_BYTES:
            raise BadPath(f"a file or folder name is at most {MAX_PART_BYTES} bytes")
        if part.startswith(WORKER_PREFIX) or part == CACHE_DIR:
            raise BadPath(f"names starting {WORKER_PREFIX} and {CACHE_DIR} folders are not kept")
    return raw


def _refused(char: str) -> bool:
    category = unicodedata.category(char)
    if category in ("Cc", "Cs", "Co", "Cn") or char == "\ufffd":
        return True  # control, surrogate, private use, unassigned or noncharacter, U+FFFD
    return category == "Cf" and char not in _JOINERS


def parents(path: str) -> list[str]:
    """The folders `path` is in, outermost first: 'a/b/c' -> ['a', 'a/b']."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def is_inside(path: str, folder: str) -> bool:
    return path.startswith(folder + "/")


def moved(path: str, source: str, target: str) -> str:
    """Where `path` (`source` itself or inside it) lands when `source` becomes `target`."""
    return target if path == source else posixpath.join(target, path[len(source) + 1 :])


class AnyPath(Convertor[str]):
    """`{path:filepath}` in a route: any characters, newlines too (Starlette's `path` stops
    at one), so that a bad name reaches `check_path` and is refused with a reason."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("filepath", AnyPath())
