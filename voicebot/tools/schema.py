"""Python signatures → OpenAI strict-mode JSON schemas and argument validators (pure).

A tool's parameters become one JSON object schema that follows the strict-mode rules: every property is
listed in ``required``, every object says ``"additionalProperties": false``, and a parameter that may be
left out is *nullable* instead of optional. ``default`` is never emitted (strict mode has no use for it and
some deployments refuse it); instead a parameter with a default is nullable, its description names the
default, and a ``null`` from the model means "use the default".

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``Literal[...]`` and ``Enum`` (→ ``enum``),
``list[X]``, ``X | None``, unions of scalars, ``datetime.date`` / ``time`` / ``datetime`` (strings with a
``format``), pydantic models (inlined objects, not recursive) and ``Annotated[X, Field(...)]`` with a
description and numeric / list-length / pattern constraints. Anything else raises ``ToolDefinitionError``.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import inspect
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

import annotated_types as at
import pydantic
import pydantic_core
from pydantic.fields import FieldInfo

from voicebot.errors import ToolDefinitionError
from voicebot.tools.context import ToolContext
from voicebot.tools.docstring import parse_docstring

JsonSchema = dict[str, Any]

_SCALARS: dict[Any, JsonSchema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    dt.datetime: {"type": "string", "format": "date-time"},
    dt.date: {"type": "string", "format": "date"},
    dt.time: {"type": "string", "format": "time"},
}
_SUPPORTED = (
    "str, int, float, bool, Literal[...], Enum, list[X], X | None, date/time/datetime, "
    "pydantic models, Annotated[X, Field(...)]"
)
_NUMERIC_BOUNDS = ((at.Ge, "ge", "minimum"), (at.Le, "le", "maximum"))
_EXCLUSIVE_BOUNDS = ((at.Gt, "gt", "exclusiveMinimum"), (at.Lt, "lt", "exclusiveMaximum"))


@dataclass(slots=True)
class Shape:
    """Where a ``null`` from the model means "use the default": drop those keys before validation."""

    drop_if_null: set[str] = field(default_factory=set)
    children: dict[str, Shape] = field(default_factory=dict)  # object keys (and "[]" for array items)

    def prune(self, value: Any) -> Any:
        if isinstance(value, list):
            item = self.children.get("[]")
            return [item.prune(v) for v in value] if item is not None else value
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, item_value in value.items():
            if item_value is None and key in self.drop_if_null:
                continue
            child = self.children.get(key)
            out[key] = child.prune(item_value) if child is not None else item_value
        return out


def _fmt(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "<missing>"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "")


class _Converter:
    """Turns one annotation into a schema; ``where`` names the function and parameter for errors."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.stack: list[type] = []

    def fail(self, annotation: Any, why: str = "unsupported annotation") -> ToolDefinitionError:
        return ToolDefinitionError(f"{self.where}: {why} {_fmt(annotation)} (supported: {_SUPPORTED})")

    def convert(self, annotation: Any) -> tuple[JsonSchema, Shape | None]:
        meta: list[Any] = []
        if typing.get_origin(annotation) is Annotated:
            annotation, *meta = typing.get_args(annotation)
        schema, shape = self._convert_bare(annotation)
        return self._apply_metadata(schema, meta), shape

    def _convert_bare(self, annotation: Any) -> tuple[JsonSchema, Shape | None]:
        origin = typing.get_origin(annotation)
        scalar = _scalar(annotation)
        if scalar is not None:
            return scalar, None
        if origin is Literal:
            return self._enum(annotation, list(typing.get_args(annotation))), None
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return self._enum(annotation, [m.value for m in annotation]), None
        if origin is list:
            args = typing.get_args(annotation)
            if len(args) != 1:
                raise self.fail(annotation, "list needs an item type:")
            items, item_shape = self.convert(args[0])
            return {"type": "array", "items": items}, Shape(
                children={"[]": item_shape}
            ) if item_shape else None
        if origin in (Union, types.UnionType):
            return self._union(annotation)
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            return self.model_object(annotation)
        raise self.fail(annotation)

    def _enum(self, annotation: Any, values: list[Any]) -> JsonSchema:
        nullable = None in values
        values = [v for v in values if v is not None]
        kinds = {type(v) for v in values}
        json_type = {frozenset({str}): "string", frozenset({int}): "integer", frozenset({bool}): "boolean"}
        kind = json_type.get(frozenset(kinds))
        if kind is None or not values:
            raise self.fail(annotation, "enum values must all be str, all int or all bool in")
        schema: JsonSchema = {"type": kind, "enum": values}
        return nullable_schema(schema) if nullable else schema

    def _union(self, annotation: Any) -> tuple[JsonSchema, Shape | None]:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        if len(args) == 1:
            schema, shape = self.convert(args[0])
        else:
            parts = [self.convert(a) for a in args]
            if any(shape is not None or s.get("type") in ("object", "array") for s, shape in parts):
                raise self.fail(annotation, "unions may only mix scalar types (and None):")
            schema, shape = {"anyOf": [s for s, _ in parts]}, None
        return (nullable_schema(schema) if nullable else schema), shape

    def model_object(self, model: type[pydantic.BaseModel]) -> tuple[JsonSchema, Shape]:
        if model in self.stack:
            raise self.fail(model, "recursive model")
        self.stack.append(model)
        try:
            properties: dict[str, JsonSchema] = {}
            shape = Shape()
            for name, info in model.model_fields.items():
                key = info.alias or name
                outer = self.where
                self.where = f"{outer} (field {model.__name__}.{name})"
                try:
                    properties[key], child, drop = self.field(info)
                finally:
                    self.where = outer
                if child is not None:
                    shape.children[key] = child
                if drop:
                    shape.drop_if_null.add(key)
            return object_schema(properties), shape
        finally:
            self.stack.pop()

    def field(self, info: FieldInfo) -> tuple[JsonSchema, Shape | None, bool]:
        """Schema of a model field: (schema, shape, whether null means 'use the default')."""
        annotation = info.annotation
        if annotation is None:
            raise self.fail(annotation)
        schema, shape = self.convert(annotation)
        schema = self._apply_metadata(schema, list(info.metadata))
        default: Any = None
        if not info.is_required():
            try:
                default = info.get_default(call_default_factory=True)
            except TypeError:  # a factory that needs the validated data: no default to show
                default = None
        schema, drop = with_default(schema, info.description, not info.is_required(), default)
        return schema, shape, drop

    def _apply_metadata(self, schema: JsonSchema, meta: list[Any]) -> JsonSchema:
        for item in meta:
            if isinstance(item, FieldInfo):
                if item.description:
                    schema = {**schema, "description": item.description}
                schema = self._apply_metadata(schema, list(item.metadata))
            elif isinstance(item, str) and item:
                schema = {**schema, "description": item}
            else:
                schema = _constraint(schema, item)
        return schema


def _scalar(annotation: Any) -> JsonSchema | None:
    try:
        found = _SCALARS.get(annotation)
    except TypeError:  # unhashable annotation object
        return None
    return dict(found) if found is not None else None


def _target(schema: JsonSchema) -> JsonSchema:
    """The non-null branch of a nullable schema (constraints belong there)."""
    if "anyOf" in schema and len(schema["anyOf"]) == 2 and schema["anyOf"][1] == {"type": "null"}:
        inner: JsonSchema = schema["anyOf"][0]
        return inner
    return schema


def _constraint(schema: JsonSchema, item: Any) -> JsonSchema:
    """Copy a supported constraint into the schema; others are only enforced by validation."""
    schema = copy.deepcopy(schema)
    target = _target(schema)
    kind = target.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if kinds & {"integer", "number"}:
        for cls, attr, key in (
            *_NUMERIC_BOUNDS,
            *_EXCLUSIVE_BOUNDS,
            (at.MultipleOf, "multiple_of", "multipleOf"),
        ):
            if isinstance(item, cls):
                target[key] = getattr(item, attr)
    if "array" in kinds:
        if isinstance(item, at.MinLen):
            target["minItems"] = item.min_length
        if isinstance(item, at.MaxLen):
            target["maxItems"] = item.max_length
    pattern = getattr(item, "pattern", None)
    if "string" in kinds and isinstance(pattern, str):
        target["pattern"] = pattern
    return schema


def nullable_schema(schema: JsonSchema) -> JsonSchema:
    """``X | None`` in strict mode: a type list for plain scalars and arrays, ``anyOf`` otherwise."""
    kind = schema.get("type")
    if isinstance(kind, str) and kind != "object" and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    if "anyOf" in schema:
        branches = schema["anyOf"]
        return schema if {"type": "null"} in branches else {**schema, "anyOf": [*branches, {"type": "null"}]}
    schema = dict(schema)
    description = schema.pop("description", None)
    out: JsonSchema = {"anyOf": [schema, {"type": "null"}]}
    if description is not None:
        out["description"] = description
    return out


def _is_nullable(schema: JsonSchema) -> bool:
    kind = schema.get("type")
    return (isinstance(kind, list) and "null" in kind) or {"type": "null"} in schema.get("anyOf", [])


def with_default(
    schema: JsonSchema, description: str | None, has_default: bool, default: Any
) -> tuple[JsonSchema, bool]:
    """Attach a description; make a defaulted parameter nullable. Returns (schema, drop_if_null)."""
    drop = has_default and not _is_nullable(schema)
    if has_default:
        schema = nullable_schema(schema)
    if has_default and default is not None:
        shown = json.dumps(pydantic_core.to_jsonable_python(default), ensure_ascii=False)
        description = f"{description.rstrip('.')}. Default: {shown}." if description else f"Default: {shown}."
    if description:
        schema = {**schema, "description": description}
    return schema, drop


def object_schema(properties: dict[str, JsonSchema]) -> JsonSchema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


@dataclass(frozen=True, slots=True)
class Parameters:
    """A tool's parameters: the strict schema, and how to turn the model's JSON into call arguments."""

    schema: JsonSchema
    validator: type[pydantic.BaseModel]
    shape: Shape
    context_param: str | None = None
    model_param: str | None = None  # the single pydantic-model parameter, when the tool takes one
    description: str = ""  # from the docstring

    def parse(self, arguments: str) -> dict[str, Any]:
        """JSON text → keyword arguments (without the context). Raises ValueError or ValidationError."""
        data = json.loads(arguments) if arguments.strip() else {}
        if not isinstance(data, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(data).__name__}")
        validated = self.validator.model_validate(self.shape.prune(data))
        if self.model_param is not None:
            return {self.model_param: validated}
        return {name[2:]: getattr(validated, name) for name in validated.model_fields_set}


def build_parameters(func: Callable[..., Any], tool_name: str) -> Parameters:
    """Read ``func``'s signature, type hints and docstring. Raises ToolDefinitionError."""
    where = f"tool {tool_name!r} (function {getattr(func, '__qualname__', func)!r})"
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"{where}: cannot resolve type hints: {exc}") from exc
    doc = parse_docstring(inspect.getdoc(func))
    context_param: str | None = None
    params: list[inspect.Parameter] = []
    for p in inspect.signature(func).parameters.values():
        annotation = hints.get(p.name, inspect.Parameter.empty)
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise ToolDefinitionError(
                f"{where}: parameter {p.name!r}: *args, **kwargs and positional-only are not supported"
            )
        if annotation is ToolContext:
            context_param = p.name
        elif annotation is inspect.Parameter.empty:
            raise ToolDefinitionError(f"{where}: parameter {p.name!r} has no type annotation")
        else:
            params.append(p.replace(annotation=annotation))
    if len(params) == 1 and _is_model(params[0].annotation):
        return _model_parameters(params[0], where, doc.description, context_param)
    properties: dict[str, JsonSchema] = {}
    shape = Shape()
    fields: dict[str, Any] = {}
    for p in params:
        conv = _Converter(f"{where}: parameter {p.name!r}")
        schema, child = conv.convert(p.annotation)
        has_default = p.default is not inspect.Parameter.empty
        description = schema.pop("description", None) or doc.params.get(p.name)
        default = p.default if has_default else None
        properties[p.name], drop = with_default(schema, description, has_default, default)
        if child is not None:
            shape.children[p.name] = child
        if drop:
            shape.drop_if_null.add(p.name)
        fields[f"p_{p.name}"] = (
            p.annotation,
            pydantic.Field(p.default if has_default else ..., alias=p.name),
        )
    validator = pydantic.create_model(
        f"{tool_name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields
    )
    return Parameters(object_schema(properties), validator, shape, context_param, None, doc.description)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


def _model_parameters(p: inspect.Parameter, where: str, description: str, context: str | None) -> Parameters:
    model: type[pydantic.BaseModel] = p.annotation
    schema, shape = _Converter(f"{where}: parameter {p.name!r}").model_object(model)
    if not description and model.__doc__:
        description = parse_docstring(model.__doc__).description
    return Parameters(schema, model, shape, context, p.name, description)
