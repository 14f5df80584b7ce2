"""A checker for OpenAI strict-mode function schemas (structured outputs' supported subset).

Rules checked: the root is an object (not anyOf); every object lists all its properties in ``required`` and
says ``additionalProperties: false``; only supported keywords appear, for the types they apply to; ``type``
names are known; enum values match the type; ``anyOf`` branches are schemas; no ``default``; nesting depth
and property/enum counts stay within the documented limits.
"""

from __future__ import annotations

from typing import Any

TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}
COMMON = {"type", "description", "title", "enum", "const", "anyOf", "$ref", "$defs"}
BY_TYPE = {
    "string": {"pattern", "format"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "array": {"items", "minItems", "maxItems"},
    "object": {"properties", "required", "additionalProperties"},
    "boolean": set(),
    "null": set(),
}
FORMATS = {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
MAX_DEPTH = 10
MAX_PROPERTIES = 5000
MAX_ENUM = 1000


def strict_problems(schema: Any) -> list[str]:
    """Every rule the schema breaks (empty when it is a valid strict-mode parameters schema)."""
    problems: list[str] = []
    if not isinstance(schema, dict) or schema.get("type") != "object":
        problems.append("root: must be an object schema")
    if isinstance(schema, dict) and "anyOf" in schema:
        problems.append("root: must not be anyOf")
    counter = [0]
    _check(schema, "root", 0, problems, counter)
    if counter[0] > MAX_PROPERTIES:
        problems.append(f"more than {MAX_PROPERTIES} properties in total")
    return problems


def _types(node: dict[str, Any], path: str, problems: list[str]) -> set[str]:
    kind = node.get("type")
    if kind is None:
        return set()
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if isinstance(kind, list) and len(kind) != len(kinds):
        problems.append(f"{path}: repeated type names")
    for k in kinds:
        if k not in TYPES:
            problems.append(f"{path}: unknown type {k!r}")
    return kinds & TYPES


def _check(node: Any, path: str, depth: int, problems: list[str], counter: list[int]) -> None:
    if not isinstance(node, dict):
        problems.append(f"{path}: schema must be an object, got {type(node).__name__}")
        return
    if depth > MAX_DEPTH:
        problems.append(f"{path}: nested deeper than {MAX_DEPTH}")
    kinds = _types(node, path, problems)
    if "type" not in node and "anyOf" not in node and "$ref" not in node and "enum" not in node:
        problems.append(f"{path}: needs type, anyOf, enum or $ref")
    allowed = set(COMMON).union(*(BY_TYPE[k] for k in kinds)) if kinds else set(COMMON)
    for key in node:
        if key not in allowed:
            problems.append(f"{path}: keyword {key!r} not allowed here (types {sorted(kinds)})")
    if "description" in node and not isinstance(node["description"], str):
        problems.append(f"{path}: description must be a string")
    if "format" in node and node["format"] not in FORMATS:
        problems.append(f"{path}: unsupported format {node['format']!r}")
    if "enum" in node:
        _check_enum(node["enum"], kinds, path, problems)
    if "anyOf" in node:
        branches = node["anyOf"]
        if not isinstance(branches, list) or not branches:
            problems.append(f"{path}: anyOf must be a non-empty list")
        else:
            for i, branch in enumerate(branches):
                _check(branch, f"{path}.anyOf[{i}]", depth, problems, counter)
    if "object" in kinds:
        _check_object(node, path, depth, problems, counter)
    if "array" in kinds:
        if "items" not in node:
            problems.append(f"{path}: array without items")
        else:
            _check(node["items"], f"{path}[]", depth + 1, problems, counter)


def _check_enum(values: Any, kinds: set[str], path: str, problems: list[str]) -> None:
    if not isinstance(values, list) or not values:
        problems.append(f"{path}: enum must be a non-empty list")
        return
    if len(values) > MAX_ENUM:
        problems.append(f"{path}: more than {MAX_ENUM} enum values")
    for v in values:
        ok = any(isinstance(v, PY_TYPES[k]) and not (k in ("integer", "number") and isinstance(v, bool))
                 for k in kinds if k in PY_TYPES)  # fmt: skip
        if kinds and not ok:
            problems.append(f"{path}: enum value {v!r} does not match type {sorted(kinds)}")


def _check_object(
    node: dict[str, Any], path: str, depth: int, problems: list[str], counter: list[int]
) -> None:
    props = node.get("properties")
    if not isinstance(props, dict):
        problems.append(f"{path}: object without properties")
        props = {}
    if node.get("additionalProperties") is not False:
        problems.append(f"{path}: additionalProperties must be false")
    required = node.get("required")
    if not isinstance(required, list) or set(required) != set(props) or len(required) != len(props):
        problems.append(f"{path}: required must list every property exactly once")
    counter[0] += len(props)
    for name, child in props.items():
        _check(child, f"{path}.{name}", depth + 1, problems, counter)
