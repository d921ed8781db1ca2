"""``modeling.first_line``: the one way every CLI and the Studio shorten an error to one line."""

from __future__ import annotations

import pytest

from modeling import first_line


def test_first_line_of_a_multi_line_message() -> None:
    assert first_line(ValueError("\n  bad value\n  Traceback (most recent call last):\n")) == (
        "bad value"
    )


def test_an_empty_message_names_the_type_or_the_default() -> None:
    assert first_line(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert first_line(RuntimeError("  \n ")) == "RuntimeError"
    assert first_line(RuntimeError(""), "") == ""
    assert first_line("", "Something went wrong") == "Something went wrong"


@pytest.mark.parametrize("text", ["one", "one\ntwo", "  one  \n\ntwo", "\n\none\n"])
def test_same_as_the_expression_it_replaces(text: str) -> None:
    exc = OSError(text)
    assert first_line(exc) == (str(exc).strip().splitlines() or [type(exc).__name__])[0]
