"""Google-style docstrings → a tool description and parameter descriptions (pure).

Only what a tool schema needs is read: the first paragraph (the tool's description) and the ``Args:`` section
(one description per parameter). Every other section (``Returns:``, ``Raises:``, ``Example:`` …) is ignored.

::

    Look up the weather.            ← description (first paragraph, joined into one line)

    Args:
        city: The city name.        ← parameters["city"]
        units (str): Either "metric"
            or "imperial".          ← continuation lines are joined
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

_ARGS_HEADERS = frozenset({"args", "arguments", "parameters", "params"})
_SECTION = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_PARAM = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


@dataclass(frozen=True, slots=True)
class Docstring:
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> Docstring:
    """Split a docstring into the summary paragraph and the ``Args:`` descriptions."""
    if not doc:
        return Docstring()
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()):
            if summary or _SECTION.match(line.strip()):
                break
            continue
        summary.append(line.strip())
    return Docstring(description=" ".join(summary), params=_args_section(lines))


def _args_section(lines: list[str]) -> dict[str, str]:
    params: dict[str, list[str]] = {}
    inside = False
    base_indent: int | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        header = _SECTION.match(line) if indent == 0 else None
        if header is not None:
            inside = header.group(1).strip().lower() in _ARGS_HEADERS
            base_indent, current = None, None
            continue
        if not inside or not stripped:
            continue
        if base_indent is None:
            base_indent = indent
        match = _PARAM.match(stripped)
        if indent <= base_indent and match is not None:
            current = match.group(1)
            params[current] = [match.group(2).strip()] if match.group(2).strip() else []
        elif current is not None and indent > base_indent:
            params[current].append(stripped)
    return {name: " ".join(parts) for name, parts in params.items()}
