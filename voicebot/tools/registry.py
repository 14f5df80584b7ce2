"""``@tool``: turn a plain (async or sync) function into a function tool the model can call.

::

    @tool
    async def get_weather(city: str, units: Literal["metric", "imperial"] = "metric") -> str:
        \"\"\"Get the current weather for a city.

        Args:
            city: The city, for example "Paris".
            units: Unit system for temperatures.
        \"\"\"

The schema is built (and checked) when the decorator runs: an annotation that cannot become a strict JSON
schema raises ``ToolDefinitionError`` right there, not in the middle of a call. The decorated object is still
callable like the original function, so tests can call it directly.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from voicebot.errors import ToolDefinitionError
from voicebot.tools.schema import JsonSchema, Parameters, build_parameters

P = ParamSpec("P")
R = TypeVar("R")

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
Filler = str | Literal[False] | None


class Tool(Generic[P, R]):
    """A function tool: the function, its strict schema, and how the runner should treat it.

    ``timeout_s`` None means the runner's default. ``cancellable`` tools are cancelled on barge-in.
    ``filler``: None uses the runner's default filler line for slow calls, a string replaces it, False
    disables it for this tool.
    """

    __name__: str  # copied from the function, like functools.wraps
    __wrapped__: Callable[P, R]

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout_s: float | None = None,
        cancellable: bool = False,
        filler: Filler = None,
    ) -> None:
        functools.update_wrapper(self, func, updated=())
        self.func = func
        self.name = name if name is not None else getattr(func, "__name__", "")
        where = f"tool {self.name!r}"
        if not _NAME.match(self.name):
            raise ToolDefinitionError(f"{where}: the name must match [A-Za-z0-9_-]{{1,64}}")
        if timeout_s is not None and not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ToolDefinitionError(
                f"{where}: timeout must be a positive number of seconds, got {timeout_s!r}"
            )
        if filler is not None and filler is not False and not (isinstance(filler, str) and filler.strip()):
            raise ToolDefinitionError(f"{where}: filler must be a non-empty string, False or None")
        self.parameters: Parameters = build_parameters(func, self.name)
        self.description = description if description is not None else self.parameters.description
        self.timeout_s = timeout_s
        self.cancellable = cancellable
        self.filler = filler
        self.is_async = _is_async(func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    @property
    def takes_context(self) -> bool:
        return self.parameters.context_param is not None

    def realtime_definition(self) -> JsonSchema:
        """The Realtime API's flat function tool: type "function", name, description, parameters."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters.schema,
        }

    def responses_definition(self) -> JsonSchema:
        """The Responses API's function tool: the same flat shape plus ``"strict": true``."""
        return {**self.realtime_definition(), "strict": True}

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def _is_async(func: Callable[..., Any]) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or (
        callable(func) and not inspect.isroutine(func) and inspect.iscoroutinefunction(type(func).__call__)
    )


@overload
def tool(func: Callable[P, R], /) -> Tool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    cancellable: bool = False,
    filler: Filler = None,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    cancellable: bool = False,
    filler: Filler = None,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Make a function tool, as ``@tool`` or ``@tool(name=..., timeout=..., ...)``.

    Args:
        func: The function (when used as a bare ``@tool``).
        name: Tool name for the model (default: the function's name).
        description: Overrides the docstring's first paragraph.
        timeout: Seconds before the call is abandoned with an error output (default: the runner's).
        cancellable: Cancel this tool when the caller barges in.
        filler: What to say when the tool is slow; False for silence; None for the runner's default.
    """

    def wrap(f: Callable[P, R]) -> Tool[P, R]:
        if isinstance(f, Tool):
            raise ToolDefinitionError(f"tool {f.name!r} is already a tool")
        return Tool(
            f, name=name, description=description, timeout_s=timeout, cancellable=cancellable, filler=filler
        )

    return wrap(func) if func is not None else wrap
