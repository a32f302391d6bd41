"""The tail of an output stream as a terminal would show it (pure; no I/O, no document).

Progress bars (tqdm, pip's rich bars, `\\r` loops) redraw themselves with terminal control:
`\\r` back to the line start, `\\b` one step back, `ESC[K` erase to the end of the line
(`1K` to its start, `2K` all of it), `ESC[A` / `ESC[B` up / down, `ESC[C` / `ESC[D`
right / left, `ESC[G` to a column, `ESC[E` / `ESC[F` to the start of the next / previous
line, `ESC[J` erase below. A `Console` applies them to the last `WINDOW` lines, so what is
stored is what a terminal shows (a redrawn bar stays one line) instead of every frame.

Colours (SGR, `ESC[...m`) are kept per character and written back out per line, each line
starting from no colour and ending reset, so overwriting half a coloured line never leaks
colour. Other escapes (cursor show/hide, titles, hyperlinks) are dropped, as a terminal
does not print them. An escape cut in two by a chunk boundary is held until the rest comes.
Characters are one column each (no wide-character widths, no wrapping at a screen width).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WINDOW = 64  # lines the cursor can go back up into; older ones are final
_MAX_PENDING = 256  # an "escape" longer than this is not one: drop it
_MAX_PEN = 8  # SGR sequences kept in the pen since its last reset
_MAX_MOVE = 1000  # columns the cursor may move right past the end of its line
RESET = "\x1b[0m"

_TOKEN = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC (titles, hyperlinks)
    r"|\x1b[()#][0-9A-Za-z]"  # charset designation
    r"|\x1b[@-Z\\^_]"  # other two-character escapes
    r"|[\r\n\b\x1b]"
    r"|[^\r\n\b\x1b]+"
)
# What the start of an escape looks like before its end has arrived.
_PARTIAL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[()#])?")
_CSI = re.compile(r"\x1b\[([0-?]*)[ -/]*([@-~])")


class Line:
    """One line: its characters and the colour runs over them (start, SGR pen). Writing at
    its end appends (amortised O(1), however many colour changes a long line has); writing
    inside it rewrites the line."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.length = 0
        self.runs: list[tuple[int, str]] = []
        # The last rendering (without its final reset), the length and runs it covered and
        # its pen at the end: a line that only grew renders only what it grew by.
        self._shown: tuple[str, int, int, str] | None = None

    @property
    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def _set(self, text: str) -> None:
        self._parts = [text] if text else []
        self.length = len(text)
        self._shown = None

    def style_at(self, column: int) -> str:
        style = ""
        for start, pen in self.runs:
            if start > column:
                break
            style = pen
        return style

    def write(self, column: int, chars: str, pen: str) -> None:
        if column >= self.length:
            self._append(" " * (column - self.length), "")
            self._append(chars, pen)
            return
        end = column + len(chars)
        after = self.style_at(end)
        text = self.text
        self._set(text[:column] + chars + text[end:])
        runs = [run for run in self.runs if run[0] < column]
        runs.append((column, pen))
        runs.append((end, after))
        runs.extend(run for run in self.runs if run[0] > end)
        self.runs = self._normal(runs)
        self._shown = None

    def _append(self, chars: str, pen: str) -> None:
        if not chars:
            return
        if (self.runs[-1][1] if self.runs else "") != pen:
            self.runs.append((self.length, pen))
        self._parts.append(chars)
        self.length += len(chars)

    def erase(self, start: int, end: int) -> None:
        """Blank columns [start, end); what is cut at the end of the line goes."""
        end = min(end, self.length)
        if start >= end:
            return
        if end == self.length:
            self._set(self.text[:start])
            self.runs = self._normal(self.runs)
            self._shown = None
        else:
            self.write(start, " " * (end - start), "")

    def _normal(self, runs: list[tuple[int, str]]) -> list[tuple[int, str]]:
        kept: list[tuple[int, str]] = []
        for start, pen in runs:
            if start >= self.length:
                continue
            if kept and kept[-1][0] == start:
                kept.pop()
            if (kept[-1][1] if kept else "") != pen:
                kept.append((start, pen))
        return kept

    def render(self) -> str:
        body, position, first, current = self._shown or ("", 0, 0, "")
        if position == self.length and first == len(self.runs) and self._shown:
            return body + RESET if current else body
        text = self.text
        out = [body]
        for start, pen in self.runs[first:]:
            out.append(text[position:start])
            out.append(RESET + pen if current else pen)
            position, current = start, pen
        out.append(text[position:])
        body = "".join(out)
        self._shown = (body, self.length, len(self.runs), current)
        return body + RESET if current else body


@dataclass
class Console:
    """The last lines of a stream and the cursor in them. `feed` chunks, then `take` what
    changed. Lines that scroll out of the window are rendered then and kept as text only
    (`scrolled`), so a chunk of a million newlines is a million strings, not lines."""

    lines: list[Line] = field(default_factory=lambda: [Line()])
    row: int = 0
    column: int = 0
    pen: str = ""
    pending: str = ""
    scrolled: list[str] = field(default_factory=list)  # left the window since `take()`
    # First line changed since `take()`, counting `scrolled` first (may be past the last).
    dirty: int = 0

    def feed(self, chunk: str) -> None:
        chunk = self.pending + chunk
        self.pending = ""
        for match in _TOKEN.finditer(chunk):
            piece = match.group()
            if piece == "\x1b":
                rest = chunk[match.start() :]
                if len(rest) <= _MAX_PENDING and _PARTIAL.fullmatch(rest):
                    self.pending = rest
                    return
                continue
            self._piece(piece)

    def _piece(self, piece: str) -> None:
        if piece == "\n":
            self._down(1, new_lines=True)
            self.column = 0
        elif piece == "\r":
            self.column = 0
        elif piece == "\b":
            self.column = max(0, self.column - 1)
        elif piece[0] != "\x1b":
            self._touch()
            self.lines[self.row].write(self.column, piece, self.pen)
            self.column += len(piece)
        elif piece.startswith("\x1b["):
            csi = _CSI.fullmatch(piece)
            if csi:
                self._csi(csi.group(1), csi.group(2))

    def _csi(self, params: str, final: str) -> None:
        if final == "m":
            self._sgr(params)
            return
        if params.startswith("?"):
            return  # private modes: cursor visibility and the like
        first = params.split(";")[0][:6]  # a terminal is not a million columns wide
        count = int(first) if first.isdigit() else 0
        step = max(count, 1)
        line = self.lines[self.row]
        # The cursor goes no further right than this, so a move cannot make a line of
        # spaces bigger than what was printed (ESC[999999C then one character).
        right = max(line.length, self.column) + _MAX_MOVE
        if final == "A":
            self.row = max(0, self.row - step)
        elif final == "B":
            self._down(step, new_lines=False)
        elif final == "C":
            self.column = min(self.column + step, right)
        elif final == "D":
            self.column = max(0, self.column - step)
        elif final == "G":
            self.column = min(step - 1, right)
        elif final == "E":
            self._down(step, new_lines=False)
            self.column = 0
        elif final == "F":
            self.row, self.column = max(0, self.row - step), 0
        elif final == "K":
            self._touch()
            if count == 0:
                line.erase(self.column, line.length)
            elif count == 1:
                line.erase(0, self.column + 1)
            elif count == 2:
                line.erase(0, line.length)
        elif final == "J" and count == 0:
            self._touch()
            line.erase(self.column, line.length)
            del self.lines[self.row + 1 :]

    def _sgr(self, params: str) -> None:
        parts = params.split(";")
        if parts[0] in ("", "0"):
            self.pen = ""
            parts = parts[1:]
            if not parts:
                return
        sequence = f"\x1b[{';'.join(parts)}m"
        pens = [s for s in re.findall(r"\x1b\[[^m]*m", self.pen) if s != sequence]
        self.pen = "".join([*pens, sequence][-_MAX_PEN:])

    def _down(self, step: int, new_lines: bool) -> None:
        target = self.row + step
        if new_lines and len(self.lines) <= target:
            # The last line now ends in a newline: it is part of what changed.
            self.dirty = min(self.dirty, len(self.scrolled) + len(self.lines) - 1)
            while len(self.lines) <= target:
                self.lines.append(Line())
            if len(self.lines) > 2 * WINDOW:
                self._scroll(len(self.lines) - WINDOW)
                target = len(self.lines) - 1
        self.row = min(target, len(self.lines) - 1)

    def _scroll(self, count: int) -> None:
        self.scrolled.extend(line.render() for line in self.lines[:count])
        del self.lines[:count]
        self.row = max(0, self.row - count)

    def _touch(self) -> None:
        self.dirty = min(self.dirty, len(self.scrolled) + self.row)

    def render(self) -> str:
        """Everything fed so far (since the last `take`), joined by newlines."""
        return "\n".join([*self.scrolled, *(line.render() for line in self.lines)])

    def take(self) -> tuple[int, list[str], int]:
        """What changed since the last `take`: the index of the first changed line, the
        lines from there on, and how many lines at the start are now final (above the
        window). Indices count from the first line the last `take` returned or kept."""
        first = self.dirty
        held = len(self.scrolled)
        changed = self.scrolled[first:] + [
            line.render() for line in self.lines[max(0, first - held) :]
        ]
        self.scrolled = []
        above = max(0, len(self.lines) - WINDOW)
        del self.lines[:above]
        self.row = max(0, self.row - above)
        self.dirty = len(self.lines)
        return first, changed, held + above


def fold(text: str) -> str:
    """What a terminal shows after printing `text`."""
    console = Console()
    console.feed(text)
    return console.render()
