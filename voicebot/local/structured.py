"""Structured output for the local engine (pure): JSON that fits a JSON Schema, filled deterministically.

The rule-based brain cannot reason, so when a request asks for ``text.format: {"type": "json_schema"}`` the
engine fills the schema mechanically from the conversation's text:

- ``const`` → that value; ``enum`` → its first value; otherwise a ``default`` if the schema gives one.
- string → the conversation's user text, cut to ``maxLength`` and padded to ``minLength``; well-known
  ``format``s (date, date-time, time, email, uri, uuid) get a fixed valid placeholder instead.
- integer / number → 0, moved into ``minimum``/``maximum`` (and exclusive bounds, ``multipleOf``).
- boolean → false; null → null.
- array → empty, or ``minItems`` filled items; object → every property (optional ones too, except deep
  inside the value, which ends recursive schemas).
- ``anyOf`` / ``oneOf`` / a list of types → the first branch; ``allOf`` → the branches merged;
  local ``$ref``s (``#/$defs/…``, ``#/definitions/…``) are followed, recursion is cut after a few levels.

A ``pattern`` cannot be honoured in general: the text is used when it matches, else "".
This is meant for post-call summaries and tests, where the shape matters more than the wording.
"""

from __future__ import annotations

import re
from typing import Any

_FORMAT_PLACEHOLDERS = {
    "date": "1970-01-01",
    "date-time": "1970-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "unknown@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "duration": "P0D",
}
_MAX_DEPTH = 12
_OPTIONAL_DEPTH = 3  # below this depth optional properties are left out (ends recursive schemas)


def fill_schema(schema: Any, text: str) -> Any:
    """A value that validates against ``schema``, built from ``text`` (see the module docstring)."""
    return _fill(schema, text, schema if isinstance(schema, dict) else {}, 0)


def _fill(schema: Any, text: str, root: dict[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    if "$ref" in schema:
        return _fill(_resolve(schema["$ref"], root), text, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            return _fill(branches[0], text, root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        return _fill(_merge_all_of(schema), text, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else ("array" if "items" in schema else "string")
    return _fill_kind(str(kind), schema, text, root, depth)


def _fill_kind(kind: str, schema: dict[str, Any], text: str, root: dict[str, Any], depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        raw_required = schema.get("required")
        required: list[Any] = raw_required if isinstance(raw_required, list) else []
        return {
            name: _fill(sub, text, root, depth + 1)
            for name, sub in props.items()
            if depth < _OPTIONAL_DEPTH or name in required
        }
    if kind == "array":
        count = schema.get("minItems", 0)
        count = count if isinstance(count, int) and count > 0 else 0
        raw_prefix = schema.get("prefixItems")
        prefix: list[Any] = raw_prefix if isinstance(raw_prefix, list) else []
        items: list[Any] = [_fill(sub, text, root, depth + 1) for sub in prefix[:count]]
        while len(items) < count:
            items.append(_fill(schema.get("items", {}), text, root, depth + 1))
        return items
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _string(schema, text)


def _string(schema: dict[str, Any], text: str) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMAT_PLACEHOLDERS:
        return _FORMAT_PLACEHOLDERS[fmt]
    value = " ".join(text.split())
    max_len = schema.get("maxLength")
    if isinstance(max_len, int) and max_len >= 0:
        value = value[:max_len].rstrip() if len(value) > max_len else value
    min_len = schema.get("minLength")
    if isinstance(min_len, int) and len(value) < min_len:
        value = value + "." * (min_len - len(value))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            if re.search(pattern, value) is None:
                return ""
        except re.error:
            return value
    return value


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    value: float = 0
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = schema.get("multipleOf")
    unit: float = step if isinstance(step, int | float) and step > 0 else (1 if integer else 0.5)
    if isinstance(lo, int | float) and value < lo:
        value = lo
    if isinstance(xlo, int | float) and value <= xlo:
        value = xlo + unit
    if isinstance(hi, int | float) and value > hi:
        value = hi
    if isinstance(xhi, int | float) and value >= xhi:
        value = xhi - unit
    if isinstance(step, int | float) and step > 0:
        value = _round_up_to(value, step)
    if integer:
        return int(value) if float(value).is_integer() else int(value) + 1
    return value


def _round_up_to(value: float, step: float) -> float:
    n = value / step
    whole = int(n) if n == int(n) or n < 0 else int(n) + 1
    result = whole * step
    return int(result) if float(result).is_integer() else result


def _resolve(ref: Any, root: dict[str, Any]) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for branch in schema["allOf"]:
        if not isinstance(branch, dict):
            continue
        for key, value in branch.items():
            if key == "properties" and isinstance(value, dict):
                merged.setdefault("properties", {}).update(value)
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def strict_schema_problem(schema: Any, path: tuple[str, ...] = ()) -> str | None:
    """Why ``schema`` cannot be used in strict mode (OpenAI's wording), or None when it can.

    Strict mode needs every object to list all of its properties in ``required`` and to set
    ``additionalProperties: false``.
    """
    if not isinstance(schema, dict):
        return None
    context = "(" + ", ".join(repr(p) for p in path) + ("," if len(path) == 1 else "") + ")"
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return f"In context={context}, 'additionalProperties' is required to be supplied and to be false."
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        missing = [name for name in props if name not in required]
        if missing:
            return (
                f"In context={context}, 'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
        for name, sub in props.items():
            problem = strict_schema_problem(sub, (*path, "properties", name))
            if problem:
                return problem
    for key in ("items",):
        problem = strict_schema_problem(schema.get(key), (*path, key))
        if problem:
            return problem
    for key in ("anyOf", "$defs", "definitions"):
        group = schema.get(key)
        entries = group.items() if isinstance(group, dict) else enumerate(group or [])
        for name, sub in entries:
            problem = strict_schema_problem(sub, (*path, key, str(name)))
            if problem:
                return problem
    return None
