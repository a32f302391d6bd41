"""The one table of websocket close codes: the public part is exactly what DESIGN.md and the
README promise, and every error class closes with a code from the table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server import errors
from server.errors import CONTRACT, CloseCode

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT.parent / "shared" / "DESIGN.md"


def listed_codes(text: str) -> dict[int, str]:
    """`NNNN words` pairs of the 'Close codes:' sentence."""
    start = text.index("Close codes:")
    sentence = text[start : text.index(".", start)]
    sentence = " ".join(sentence.split())
    return {int(code): words for code, words in re.findall(r"(\d{4}) ([^,0-9]+)", sentence)}


@pytest.mark.skipif(not DESIGN.exists(), reason="DESIGN.md lives beside the repository")
def test_contract_is_designs_list_word_for_word() -> None:
    listed = listed_codes(DESIGN.read_text())
    assert {int(code): words for code, words in CONTRACT.items()} == {
        code: words.strip() for code, words in listed.items()
    }


def test_readme_documents_every_contract_code() -> None:
    listed = listed_codes((ROOT / "README.md").read_text())
    assert set(listed) == {int(code) for code in CONTRACT}


def test_every_error_closes_with_a_code_from_the_table() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.TandemError)
    ]
    assert len(classes) > 10
    for cls in classes:
        assert isinstance(cls.close_code, CloseCode), cls


def test_codes_are_unique_and_in_the_websocket_ranges() -> None:
    values = [int(code) for code in CloseCode]
    assert len(values) == len(set(values))
    assert all(1000 <= v <= 1014 or 4000 <= v <= 4999 for v in values)
