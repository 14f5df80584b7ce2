"""Generated schemas, compared with literal dicts, and each one checked against the strict-mode rules."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any, Literal, Optional

import pydantic
import pytest
from pydantic import BaseModel, Field

from tests.tools.strict_checker import strict_problems
from voicebot.errors import ToolDefinitionError
from voicebot.tools import ToolContext, tool


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    street: str = Field(description="Street and number.")
    city: str


class Person(BaseModel):
    name: str
    age: int | None = None
    address: Address
    tags: list[str] = Field(default_factory=list, description="Labels.")
    country: str = "FR"


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Opaque:
    pass


def params(annotation: Any, default: Any = ..., doc: str = "") -> dict[str, Any]:
    """The schema of ``x`` in ``f(flag: bool, x: annotation [= default])`` (two parameters, because a single
    pydantic-model parameter is the whole schema)."""
    ns: dict[str, Any] = {"A": annotation}
    src = "def f(flag: bool, x: A = D): pass" if default is not ... else "def f(flag: bool, x: A): pass"
    ns["D"] = default
    exec(src, ns)
    ns["f"].__doc__ = doc
    t = tool(ns["f"])
    schema = t.realtime_definition()["parameters"]
    assert strict_problems(schema) == []
    return schema["properties"]["x"]  # type: ignore[no-any-return]


def obj(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, {"type": "string"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (dt.date, {"type": "string", "format": "date"}),
        (dt.time, {"type": "string", "format": "time"}),
        (dt.datetime, {"type": "string", "format": "date-time"}),
        (Literal["a", "b"], {"type": "string", "enum": ["a", "b"]}),
        (Literal[1, 2, 3], {"type": "integer", "enum": [1, 2, 3]}),
        (Literal[True], {"type": "boolean", "enum": [True]}),
        (Color, {"type": "string", "enum": ["red", "green"]}),
        (Level, {"type": "integer", "enum": [1, 2]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list[list[str]], {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}),
        (list[Color], {"type": "array", "items": {"type": "string", "enum": ["red", "green"]}}),
        (Optional[str], {"type": ["string", "null"]}),  # noqa: UP045 - the old spelling must work too
        (int | None, {"type": ["integer", "null"]}),
        (list[int] | None, {"type": ["array", "null"], "items": {"type": "integer"}}),
        (Literal["a", "b"] | None, {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}]}),
        (Literal["a", None], {"anyOf": [{"type": "string", "enum": ["a"]}, {"type": "null"}]}),
        (Color | None, {"anyOf": [{"type": "string", "enum": ["red", "green"]}, {"type": "null"}]}),
        (int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (int | str | None, {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}),
        (Annotated[int, Field(ge=1, le=20)], {"type": "integer", "minimum": 1, "maximum": 20}),
        (Annotated[float, Field(gt=0, lt=1)],
         {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}),
        (Annotated[str, Field(pattern="^[0-9]+$")], {"type": "string", "pattern": "^[0-9]+$"}),
        (Annotated[list[int], Field(min_length=1, max_length=3)],
         {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}),
        (Annotated[str, Field(description="From Field.")], {"type": "string", "description": "From Field."}),
        (Annotated[str, "From a plain string."], {"type": "string", "description": "From a plain string."}),
        (Annotated[int, Field(ge=0)] | None, {"type": ["integer", "null"], "minimum": 0}),
        (Address, obj({"street": {"type": "string", "description": "Street and number."},
                       "city": {"type": "string"}})),
        (Address | None, {"anyOf": [obj({"street": {"type": "string", "description": "Street and number."},
                                         "city": {"type": "string"}}), {"type": "null"}]}),
        (list[Address], {"type": "array", "items": obj({
            "street": {"type": "string", "description": "Street and number."}, "city": {"type": "string"}})}),
    ],
)  # fmt: skip
def test_annotation_schemas(annotation: Any, expected: dict[str, Any]) -> None:
    assert params(annotation) == expected


@pytest.mark.parametrize(
    ("annotation", "default", "expected"),
    [
        (str, None, {"type": ["string", "null"]}),
        (str | None, None, {"type": ["string", "null"]}),
        (int, 3, {"type": ["integer", "null"], "description": "Default: 3."}),
        (str, "metric", {"type": ["string", "null"], "description": 'Default: "metric".'}),
        (bool, False, {"type": ["boolean", "null"], "description": "Default: false."}),
        (Color, Color.RED, {"anyOf": [{"type": "string", "enum": ["red", "green"]}, {"type": "null"}],
                            "description": 'Default: "red".'}),
        (Literal["x", "y"], "y", {"anyOf": [{"type": "string", "enum": ["x", "y"]}, {"type": "null"}],
                                  "description": 'Default: "y".'}),
        (list[int], [],
         {"type": ["array", "null"], "items": {"type": "integer"}, "description": "Default: []."}),
    ],
)  # fmt: skip
def test_defaults_become_nullable_and_are_described(
    annotation: Any, default: Any, expected: dict[str, Any]
) -> None:
    assert params(annotation, default) == expected


def test_default_is_appended_to_the_docstring_description() -> None:
    doc = """Do it.

    Args:
        x: How many times.
    """
    assert params(int, 2, doc) == {"type": ["integer", "null"], "description": "How many times. Default: 2."}


def test_nested_model_with_defaults_optionals_and_lists() -> None:
    address = obj(
        {"street": {"type": "string", "description": "Street and number."}, "city": {"type": "string"}}
    )
    assert params(Person) == obj(
        {
            "name": {"type": "string"},
            "age": {"type": ["integer", "null"]},
            "address": address,
            "tags": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "Labels. Default: [].",
            },
            "country": {"type": ["string", "null"], "description": 'Default: "FR".'},
        }
    )


async def get_weather(
    city: str, units: Literal["metric", "imperial"] = "metric", days: int | None = None
) -> str:
    """Get the current weather for a city.

    Call this whenever the caller asks about the weather.

    Args:
        city: The city, for example "Paris".
        units (str): Unit system
            for the temperatures.

    Returns:
        A short sentence.
    """
    return city


def test_whole_tool_definition_from_hints_and_google_docstring() -> None:
    t = tool(get_weather)
    expected = {
        "type": "function",
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": 'The city, for example "Paris".'},
                "units": {
                    "anyOf": [{"type": "string", "enum": ["metric", "imperial"]}, {"type": "null"}],
                    "description": 'Unit system for the temperatures. Default: "metric".',
                },
                "days": {"type": ["integer", "null"]},
            },
            "required": ["city", "units", "days"],
            "additionalProperties": False,
        },
    }
    assert t.realtime_definition() == expected
    assert t.responses_definition() == {**expected, "strict": True}
    assert strict_problems(t.realtime_definition()["parameters"]) == []


class Booking(BaseModel):
    """A table reservation."""

    party_size: Annotated[int, Field(ge=1, le=12, description="How many people.")]
    day: dt.date
    name: str


def test_single_pydantic_model_parameter_is_the_whole_schema() -> None:
    @tool(name="book", description="Book a table.")
    async def book(booking: Booking, ctx: ToolContext) -> str:
        return booking.name

    assert book.realtime_definition() == {
        "type": "function",
        "name": "book",
        "description": "Book a table.",
        "parameters": obj(
            {
                "party_size": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 12,
                    "description": "How many people.",
                },
                "day": {"type": "string", "format": "date"},
                "name": {"type": "string"},
            }
        ),
    }
    assert book.parameters.model_param == "booking"
    assert book.parameters.context_param == "ctx"


def test_model_docstring_is_the_description_when_the_function_has_none() -> None:
    @tool
    def book(booking: Booking) -> str:
        return booking.name

    assert book.description == "A table reservation."


def test_tool_context_is_hidden_and_a_no_argument_tool_is_an_empty_object() -> None:
    @tool
    async def hang(ctx: ToolContext) -> None:
        """Hang up."""

    assert hang.realtime_definition()["parameters"] == obj({})
    assert hang.parameters.context_param == "ctx"
    assert strict_problems(obj({})) == []


def test_decorator_options_and_plain_call() -> None:
    @tool(name="slow-lookup", description="Override.", timeout=0.5, cancellable=True, filler="Hold on.")
    def lookup(q: str) -> str:
        """Docstring text."""
        return q.upper()

    assert (lookup.name, lookup.description, lookup.timeout_s) == ("slow-lookup", "Override.", 0.5)
    assert lookup.cancellable and lookup.filler == "Hold on." and not lookup.is_async
    assert lookup("abc") == "ABC"  # still callable as the function
    assert (
        lookup.__name__ == "lookup"
        and lookup.__doc__ == "Docstring text."
        and lookup.__wrapped__ is lookup.func
    )


def _unsupported_dict(x: dict[str, Any]) -> None: ...
def _unsupported_class(x: Opaque) -> None: ...
def _unsupported_any(x: Any) -> None: ...
def _unsupported_set(x: set[int]) -> None: ...
def _unsupported_tuple(x: tuple[int, int]) -> None: ...
def _unsupported_bare_list(x: list) -> None: ...  # type: ignore[type-arg]
def _unsupported_nested(x: list[dict[str, int]]) -> None: ...
def _unsupported_mixed_literal(x: Literal["a", 1]) -> None: ...
def _unsupported_model_union(x: Address | str) -> None: ...
def _unsupported_recursive(x: Node) -> None: ...
def _unsupported_none(x: None) -> None: ...


@pytest.mark.parametrize(
    ("func", "fragment"),
    [
        (_unsupported_dict, "dict[str, Any]"),
        (_unsupported_class, "Opaque"),
        (_unsupported_any, "Any"),
        (_unsupported_set, "set[int]"),
        (_unsupported_tuple, "tuple[int, int]"),
        (_unsupported_bare_list, "list"),
        (_unsupported_nested, "dict[str, int]"),
        (_unsupported_mixed_literal, "Literal['a', 1]"),
        (_unsupported_model_union, "Address | str"),
        (_unsupported_recursive, "Node"),
        (_unsupported_none, "None"),
    ],
)
def test_unsupported_annotations_fail_at_decoration(func: Any, fragment: str) -> None:
    with pytest.raises(ToolDefinitionError) as info:
        tool(func)
    message = str(info.value)
    assert func.__name__ in message and "'x'" in message and fragment in message


def test_missing_annotation_and_varargs_fail_at_decoration() -> None:
    def untyped(city, days: int) -> None:  # type: ignore[no-untyped-def]
        ...

    def star(*names: str) -> None: ...

    with pytest.raises(ToolDefinitionError, match=r"untyped.*'city' has no type annotation"):
        tool(untyped)
    with pytest.raises(ToolDefinitionError, match=r"star.*'names'"):
        tool(star)


def test_bad_tool_options_fail_at_decoration() -> None:
    def f() -> None: ...

    with pytest.raises(ToolDefinitionError, match="name"):
        tool(name="has spaces")(f)
    with pytest.raises(ToolDefinitionError, match="timeout"):
        tool(timeout=0)(f)
    with pytest.raises(ToolDefinitionError, match="filler"):
        tool(filler="  ")(f)
    with pytest.raises(ToolDefinitionError, match="already a tool"):
        tool(tool(f))


def test_field_names_that_shadow_pydantic_attributes_still_work() -> None:
    @tool
    def f(json: str, schema: int, model_config: bool) -> str:
        return f"{json}{schema}{model_config}"

    assert list(f.realtime_definition()["parameters"]["properties"]) == ["json", "schema", "model_config"]
    assert f.parameters.parse('{"json": "a", "schema": 1, "model_config": true}') == {
        "json": "a",
        "schema": 1,
        "model_config": True,
    }


def test_parse_turns_null_into_the_default_only_for_non_nullable_types() -> None:
    @tool
    def f(n: int = 3, label: str | None = "x", who: Person | None = None) -> None: ...

    args = f.parameters.parse(
        '{"n": null, "label": null, "who": {"name": "Ann", "age": null, '
        '"address": {"street": "1 Rd", "city": "Oz"}, "tags": null, "country": null}}'
    )
    assert "n" not in args  # the function's own default applies
    assert args["label"] is None  # the type allows None, so null means None
    assert args["who"] == Person(name="Ann", address=Address(street="1 Rd", city="Oz"))
    assert args["who"].tags == [] and args["who"].country == "FR"


def test_parse_rejects_extra_keys_bad_types_and_non_objects() -> None:
    t = tool(get_weather)
    with pytest.raises(pydantic.ValidationError):
        t.parameters.parse('{"city": "Paris", "units": "kelvin", "days": null}')
    with pytest.raises(pydantic.ValidationError):
        t.parameters.parse('{"city": "Paris", "units": null, "days": null, "extra": 1}')
    with pytest.raises(ValueError, match="JSON object"):
        t.parameters.parse("[1, 2]")
    with pytest.raises(ValueError):
        t.parameters.parse("{not json")


def test_checker_catches_broken_schemas() -> None:
    good = obj({"a": {"type": "string"}})
    assert strict_problems(good) == []
    assert strict_problems({**good, "required": []})
    assert strict_problems({**good, "additionalProperties": True})
    assert strict_problems(obj({"a": {"type": "string", "default": "x"}}))
    assert strict_problems(obj({"a": {"type": "object", "properties": {"b": {"type": "string"}}}}))
    assert strict_problems(obj({"a": {"type": "string", "minimum": 1}}))
    assert strict_problems(obj({"a": {"type": "integer", "enum": ["x"]}}))
    assert strict_problems(obj({"a": {"type": "array"}}))
    assert strict_problems(obj({"a": {"type": "strin"}}))
    assert strict_problems({"anyOf": [good, {"type": "null"}]})
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(12):
        deep = obj({"x": deep})
    assert any("deeper" in p for p in strict_problems(deep))
