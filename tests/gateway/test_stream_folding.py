"""Streams folded as a terminal shows them: `\\r`, `\\b`, erase-line, cursor up, colours,
and chunk boundaries anywhere, on the server (console.py) and in the editor (ansi.js)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pycrdt import Array, Doc, Map

from server.gateway.console import WINDOW, Console, fold
from server.gateway.outputs import CellWriter
from tests.support_web import run_module

CASES = [
    ("abc", "abc"),
    ("a\nb", "a\nb"),
    ("10%\r20%", "20%"),
    ("100%\r5%", "5%0%"),  # a terminal overwrites, it does not erase
    ("100%\r\x1b[K5%", "5%"),
    ("100%\r\x1b[0K5%", "5%"),
    ("abc\b\bX", "aXc"),
    ("x\r\n", "x\n"),
    ("a\r\nb\r\n", "a\nb\n"),  # Windows newlines are newlines
    ("\r\r\rdone\n", "done\n"),
    ("é\rü", "ü"),
    ("abcdef\x1b[3D\x1b[1K", "    ef"),  # erase to the line start
    ("abcdef\x1b[2KX", "      X"),  # erase the whole line, the cursor stays
    ("one\ntwo\n\x1b[A\x1b[Athree\n", "three\ntwo\n"),  # cursor up, then write over
    ("a\nb\nc\x1b[2A\x1b[J", "a"),  # erase below
    ("bar 1\nbar 2\x1b[F\x1b[2Kbar 1 done\x1b[E", "bar 1 done\nbar 2"),
    ("abc\x1b[5Gx", "abc x"),  # a column past the end pads
    ("\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"),  # private modes print nothing
    ("\x1b]8;;https://x.test\x07link\x1b]8;;\x07", "link"),  # so do hyperlinks
    ("\x1b[31mred\x1b[0m plain", "\x1b[31mred\x1b[0m plain"),
    # Hostile moves: no line of a billion spaces, no number too long to parse.
    ("ab\x1b[999999999Cx", "ab" + " " * 1000 + "x"),
    ("\x1b[" + "9" * 200 + "Gx", " " * 1000 + "x"),
    ("a\x1b[999999999B\x1b[999999999Ab", "ab"),
    # Overwriting the start of a red line leaves its tail red, and nothing else.
    ("\x1b[31mabcd\x1b[0m\rXY", "XY\x1b[31mcd\x1b[0m"),
    ("\x1b[1m\x1b[31mbold red\x1b[0m", "\x1b[1m\x1b[31mbold red\x1b[0m"),
    ("\x1b[31mred\nstill red\x1b[m", "\x1b[31mred\x1b[0m\n\x1b[31mstill red\x1b[0m"),
]


@pytest.mark.parametrize(("printed", "shown"), CASES)
def test_fold_shows_what_a_terminal_shows(printed: str, shown: str) -> None:
    assert fold(printed) == shown


def test_the_editor_folds_the_same_way() -> None:
    """static/src/ansi.js folds documents stored before the server folded them."""
    printed = [case[0] for case in CASES]
    assert run_module("ansi.js", "args[0].map(m.foldConsole)", printed) == [c[1] for c in CASES]


# pip 23's progress bar (rich) in a terminal: it hides the cursor, then redraws one line
# with `\r` + erase-line, in colour, then shows the cursor again.
PIP = "".join(
    [
        "Downloading altair-5.5.0-py3-none-any.whl (731 kB)\n",
        "\x1b[?25l",
        *(
            f"\r\x1b[2K   \x1b[38;5;197m{'━' * i}\x1b[0m\x1b[38;5;237m{'━' * (40 - i)}\x1b[0m "
            f"\x1b[32m{i * 18}/731 kB\x1b[0m \x1b[31m{40 - i} MB/s\x1b[0m "
            f"eta \x1b[36m0:00:0{i % 3}\x1b[0m"
            for i in range(41)
        ),
        "\r\x1b[2K   \x1b[38;5;70m" + "━" * 40 + "\x1b[0m \x1b[32m731.2/731.2 kB\x1b[0m "
        "\x1b[31m9.1 MB/s\x1b[0m eta \x1b[36m0:00:00\x1b[0m\n",
        "\x1b[?25h",
        "Installing collected packages: altair\n",
    ]
)


def test_a_pip_progress_bar_folds_to_its_last_frame() -> None:
    shown = fold(PIP)
    assert shown.count("\n") == 3
    assert shown.count("eta") == 1 and "0:00:0000:01" not in shown
    assert "731.2/731.2 kB" in shown and "/731 kB" not in shown
    assert shown.endswith("Installing collected packages: altair\n")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_any_chunk_boundary_gives_the_same_screen(seed: int) -> None:
    """Escapes, `\\r\\n` and `\\r` cut anywhere between two chunks fold as if whole."""
    rng = random.Random(seed)
    print(f"seed={seed}")
    for printed, _ in [*CASES, (PIP, "")]:
        console = Console()
        cuts = sorted(rng.sample(range(len(printed) + 1), min(len(printed) + 1, 4)))
        for start, end in zip([0, *cuts], [*cuts, len(printed)], strict=True):
            console.feed(printed[start:end])
        assert console.render() == fold(printed), repr(printed)


def new_cell() -> tuple[Doc[Any], Map[Any]]:
    doc: Doc[Any] = Doc()
    cells = doc.get("cells", type=Array)
    cell = Map({"id": "c", "cell_type": "code", "outputs": Array()})
    cells.append(cell)
    return doc, cell


def stream_text(cell: Map[Any]) -> str:
    return str(cell["outputs"][0]["text"])


def test_the_cell_holds_the_folded_text_whatever_the_chunks() -> None:
    rng = random.Random(7)
    doc, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    position = 0
    printed = PIP * 20
    while position < len(printed):
        step = rng.randint(1, 40)
        writer.write(
            cell, "stream", {"name": "stdout", "text": printed[position : position + step]}
        )
        position += step
    assert stream_text(cell) == fold(printed)
    assert len(doc.get_update()) < 60_000  # not every frame of every bar


def test_an_erase_line_loop_keeps_one_line_in_the_document() -> None:
    doc, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    for i in range(3000):
        writer.write(
            cell, "stream", {"name": "stdout", "text": f"\r\x1b[K{i}/3000 eta 0:00:{i % 60:02}"}
        )
    writer.write(cell, "stream", {"name": "stdout", "text": "\n"})
    assert stream_text(cell) == "2999/3000 eta 0:00:59\n"
    assert len(doc.get_update()) < 20_000


def test_nested_bars_rewrite_lines_above_the_cursor() -> None:
    """tqdm's nested bars: each redraws its own line, moving there with `\\n` and `ESC[A`."""
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    writer.write(cell, "stream", {"name": "stderr", "text": "header\n"})
    for outer in range(3):
        for inner in range(5):
            for position, value in ((0, f"outer {outer}/3"), (1, f"inner {inner}/5")):
                move = "\n" * position
                back = "\x1b[A" * position
                frame = f"{move}\r{value}{back}"
                writer.write(cell, "stream", {"name": "stderr", "text": frame})
    assert stream_text(cell) == "header\nouter 2/3\ninner 4/5"


def test_lines_above_the_window_are_final() -> None:
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    writer.write(cell, "stream", {"name": "stdout", "text": "".join(f"{i}\n" for i in range(200))})
    writer.write(cell, "stream", {"name": "stdout", "text": "\x1b[A" * 500 + "top"})
    lines = stream_text(cell).split("\n")
    assert lines[200 - WINDOW + 1] == "top" and lines[0] == "0"


def test_a_folded_stream_still_respects_the_cap() -> None:
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1000)
    for i in range(500):
        writer.write(cell, "stream", {"name": "stdout", "text": f"\x1b[32mline {i}\x1b[0m\n"})
    assert len(stream_text(cell).encode()) <= 1000
    assert writer.truncated


def test_a_long_line_in_many_colours_renders_the_same_drawn_piece_by_piece() -> None:
    """Lines render incrementally while they only grow; an overwrite starts them afresh."""
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=1_000_000)
    printed = ""
    for i in range(300):
        chunk = "".join(f"\x1b[3{(i + k) % 8}m{k}" for k in range(7))
        if i % 50 == 49:
            chunk += "\r\x1b[1mX\x1b[0m"  # back to the start: write over the first character
        if i % 100 == 99:
            chunk += "\x1b[5G\x1b[1K"  # blank the line's start
        printed += chunk
        writer.write(cell, "stream", {"name": "stdout", "text": chunk})
    assert stream_text(cell) == fold(printed)
    assert "\n" not in stream_text(cell) and stream_text(cell).startswith("     ")


def test_a_number_too_long_for_int_is_still_a_move() -> None:
    # int() refuses more than 4300 digits; the gateway must not raise on kernel output.
    assert fold("\x1b[" + "9" * 5000 + "Cx") == " " * 1000 + "x"


def test_a_flood_of_lines_in_one_chunk_keeps_only_the_window_as_lines() -> None:
    """Lines leaving the window are kept as text, not as editable lines (memory)."""
    console = Console()
    console.feed("x\n" * 100_000 + "\x1b[A" * 500 + "top")
    assert len(console.lines) <= 2 * WINDOW
    _, cell = new_cell()
    writer = CellWriter(limit_bytes=10_000_000)
    writer.write(cell, "stream", {"name": "stdout", "text": "x\n" * 100_000})
    writer.write(cell, "stream", {"name": "stdout", "text": "\x1b[A" * 500 + "top"})
    lines = stream_text(cell).split("\n")
    assert len(lines) == 100_001 and lines[-WINDOW] == "top" and lines[-WINDOW - 1] == "x"


def test_the_editor_stops_cursor_up_at_the_same_window() -> None:
    printed = "".join(f"{i}\n" for i in range(300)) + "\x1b[A" * 500 + "top"
    assert run_module("ansi.js", "m.foldConsole(args[0])", printed) == fold(printed)
