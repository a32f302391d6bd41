"""Which inline styles and classes user content keeps (static/src/content-policy.js), a pure
module, run under Node: the look stays, nothing leaves its box (issue 12, overlay phishing)."""

from __future__ import annotations

from typing import Any

from tests.support_web import run_module


def kept(declarations: list[tuple[str, str]], context: str = "html") -> list[str]:
    """The properties of `declarations` the policy keeps in `context`."""
    expression = "args[0].filter(([p, v]) => m.keepDeclaration(p, v, args[1])).map(([p]) => p)"
    result: list[str] = run_module("content-policy.js", expression, declarations, context)
    return result


def classes(value: Any) -> str:
    result: str = run_module("content-policy.js", "m.userClasses(args[0])", value)
    return result


LOOK = [
    ("color", "rgb(255, 0, 0)"),
    ("background-color", "#fffbe6"),
    ("font-weight", "700"),
    ("font-style", "italic"),
    ("font-family", '"Comic Sans MS", cursive'),
    ("text-align", "center"),
    ("text-decoration-line", "underline"),
    ("border-top-width", "1px"),
    ("border-top-style", "solid"),
    ("padding-left", "4px"),
    ("margin-top", "0.5em"),
    ("width", "50%"),
]


def test_the_look_is_kept() -> None:
    assert kept(LOOK) == [name for name, _ in LOOK]


def test_nothing_that_leaves_the_box_or_loads_is_kept() -> None:
    escaping = [
        ("position", "fixed"),
        ("position", "sticky"),
        ("position", "absolute"),
        ("z-index", "2147483647"),
        ("top", "0px"),
        ("left", "0px"),
        ("inset", "0px"),
        ("transform", "translate(-100px, -100px)"),
        ("translate", "-100px"),
        ("margin-top", "-999px"),
        ("margin-left", "calc(0px - 999px)"),
        ("background-image", 'url("https://evil.example/x.png")'),
        ("background-color", "var(--accent)"),
        ("color", "expression(alert(1))"),
        ("content", '"Session expired"'),
        ("display", "contents"),
        ("anchor-name", "--x"),
        ("--accent", "red"),
        ("color", "red\\;position:fixed"),
        ("font-family", "x</style>"),
        ("color", ""),
    ]
    assert kept(escaping) == []
    assert kept(escaping, "svg") == []


def test_svg_keeps_its_presentation_and_math_its_layout() -> None:
    svg = [("fill", "rgb(31, 119, 180)"), ("stroke-width", "0.8"), ("stroke-linejoin", "round")]
    assert kept(svg, "svg") == ["fill", "stroke-width", "stroke-linejoin"]
    assert kept(svg, "html") == []
    # KaTeX's own offsets: relative positioning and negative margins, nothing fixed.
    layout = [("top", "-3.063em"), ("margin-right", "-0.05em"), ("position", "relative")]
    assert kept(layout, "math") == ["top", "margin-right", "position"]
    assert kept([("position", "fixed"), ("z-index", "9"), ("position", "absolute")], "math") == []


def test_the_authors_classes_are_never_the_pages() -> None:
    assert classes("toast  panel bar") == "user-toast user-panel user-bar"
    assert classes("language-python") == "language-python"
    assert classes("   ") == ""
