from __future__ import annotations

from voicebot.tools.docstring import parse_docstring


def test_summary_and_args_with_types_and_continuations() -> None:
    doc = parse_docstring(
        """Book a table
        for dinner.

        More details that are not part of the description.

        Args:
            party_size (int): How many
                people are coming.
            name: Who books.
            *extras: Ignored style.

        Returns:
            Nothing useful.
        """
    )
    assert doc.description == "Book a table for dinner."
    assert doc.params == {
        "party_size": "How many people are coming.",
        "name": "Who books.",
        "extras": "Ignored style.",
    }


def test_other_headers_and_empty_docstrings() -> None:
    assert parse_docstring(None).description == ""
    assert parse_docstring("").params == {}
    doc = parse_docstring("Summary.\n\nParameters:\n    x: The x.\nRaises:\n    y: not a param.")
    assert doc.description == "Summary." and doc.params == {"x": "The x."}
    assert parse_docstring("Args:\n    x: only args.").description == ""
