"""Parsing and validating a ``POST /v1/responses`` body (pure).

The engine accepts what the official API accepts for text conversations: ``input`` as a string or a list of
items (messages with string, ``input_text`` or echoed ``output_text`` content, ``function_call`` and
``function_call_output`` items, and ``reasoning`` items, which are skipped), ``instructions``, flat function
tools (``strict`` honoured), ``tool_choice``, ``previous_response_id``, ``max_output_tokens``, ``metadata``,
``text.format`` (``text``, ``json_schema``, ``json_object``) and ``stream``. Anything the offline engine
cannot do (hosted tools such as web search, images, files, audio input, stored prompts, conversations,
background mode) is refused with a 400 that names the part, never answered with made-up content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from voicebot.local.api_error import (
    ApiError,
    invalid_type,
    invalid_value,
    missing_parameter,
    unknown_parameter,
    unsupported,
)
from voicebot.local.structured import strict_schema_problem

KNOWN_PARAMS = frozenset(
    {
        "access_programs", "background", "background_options", "context_management", "conversation", "image",
        "include", "input", "instructions", "max_output_tokens", "max_tool_calls", "metadata", "model",
        "moderation", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key",
        "prompt_cache_options", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier",
        "store", "stream", "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs",
        "top_p", "truncation", "user",
    }
)  # fmt: skip
HOSTED_TOOLS = {
    "web_search": "web search",
    "web_search_preview": "web search",
    "web_search_2025_08_26": "web search",
    "web_search_preview_2025_03_11": "web search",
    "file_search": "file search",
    "code_interpreter": "code interpreter",
    "mcp": "remote MCP",
    "image_generation": "image generation",
    "computer": "computer use",
    "computer_use_preview": "computer use",
    "local_shell": "local shell",
    "shell": "shell",
    "apply_patch": "apply patch",
    "custom": "custom (free-form) tools",
    "namespace": "tool namespaces",
    "tool_search": "tool search",
    "programmatic_tool_calling": "programmatic tool calling",
}
_UNSUPPORTED_PARAMS = {
    "conversation": "the Conversations API",
    "prompt": "stored prompts",
    "background": "background mode",
}
_TEXT_PARTS = {"input_text", "output_text", "text"}
_MEDIA_PARTS = {"input_image": "images", "input_file": "files", "input_audio": "audio input"}
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ROLES = ("user", "assistant", "system", "developer")
MIN_OUTPUT_TOKENS = 16


@dataclass(slots=True)
class ResponsesRequest:
    """A validated request. ``items`` are normalized input items (see ``normalize_item``)."""

    model: str
    items: list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    previous_response_id: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    text_format: dict[str, Any] = field(default_factory=lambda: {"type": "text"})
    verbosity: str = "medium"
    stream: bool = False
    store: bool = True
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    include_obfuscation: bool = True
    echo: dict[str, Any] = field(default_factory=dict)  # other fields echoed into the response object


def parse_request(body: Any) -> ResponsesRequest:
    """Validate ``body`` (decoded JSON); raises ``ApiError`` with OpenAI's wording on the first problem."""
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    for key in body:
        if key not in KNOWN_PARAMS:
            raise unknown_parameter(key)
    for key, what in _UNSUPPORTED_PARAMS.items():
        if body.get(key) not in (None, False):
            raise unsupported(key, f"The local engine does not support {what} ('{key}').")
    model = body.get("model")
    if model is None:
        raise missing_parameter("model")
    if not isinstance(model, str) or not model:
        raise invalid_type("model", "a string", model)
    req = ResponsesRequest(model=model, items=_parse_input(body.get("input")))
    req.instructions = _optional_str(body, "instructions")
    req.tools = _parse_tools(body.get("tools"))
    req.tool_choice = _parse_tool_choice(body.get("tool_choice", "auto"), req.tools)
    req.previous_response_id = _optional_str(body, "previous_response_id")
    req.max_output_tokens = _parse_max_tokens(body.get("max_output_tokens"))
    req.metadata = _parse_metadata(body.get("metadata"))
    req.text_format, req.verbosity = _parse_text(body.get("text"))
    req.stream = _optional_bool(body, "stream", False)
    req.store = _optional_bool(body, "store", True)
    req.parallel_tool_calls = _optional_bool(body, "parallel_tool_calls", True)
    req.temperature = _optional_number(body, "temperature", 0.0, 2.0)
    req.top_p = _optional_number(body, "top_p", 0.0, 1.0)
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_obfuscation") is False:
        req.include_obfuscation = False
    req.echo = {
        k: body[k]
        for k in ("user", "safety_identifier", "prompt_cache_key", "reasoning", "truncation", "top_logprobs")
        if body.get(k) is not None
    }
    return req


# input ----------------------------------------------------------------------------------------------------
def _parse_input(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [_message("user", [{"type": "input_text", "text": raw}])]
    if not isinstance(raw, list):
        raise invalid_type("input", "a string or an array of input items", raw)
    items: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        normalized = normalize_item(item, f"input[{i}]")
        if normalized is not None:
            items.append(normalized)
    return items


def normalize_item(item: Any, where: str) -> dict[str, Any] | None:
    """One input item in the engine's shape (None for items that carry nothing for it, like reasoning)."""
    if not isinstance(item, dict):
        raise invalid_type(where, "an object", item)
    kind = item.get("type", "message")
    if not isinstance(kind, str):
        raise invalid_type(f"{where}.type", "a string", kind)
    if kind == "message":
        return _normalize_message(item, where)
    if kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            if not isinstance(item.get(key), str):
                raise missing_parameter(f"{where}.{key}")
        out = {k: item[k] for k in ("call_id", "name", "arguments")}
        return {"type": "function_call", **out, "id": item.get("id") or None}
    if kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise missing_parameter(f"{where}.call_id")
        return {
            "type": "function_call_output",
            "call_id": item["call_id"],
            "output": _tool_output(item, where),
        }
    if kind == "reasoning":
        return None
    if kind in HOSTED_TOOLS or kind.endswith("_call") or kind.endswith("_call_output"):
        raise unsupported(f"{where}.type", f"The local engine does not support '{kind}' items ({where}).")
    raise invalid_value(
        f"{where}.type",
        f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', 'function_call_output' "
        "and 'reasoning'.",
    )


def _normalize_message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role is None:
        raise missing_parameter(f"{where}.role")
    if role not in _ROLES:
        raise invalid_value(
            f"{where}.role",
            f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'.",
        )
    content = item.get("content")
    if content is None:
        raise missing_parameter(f"{where}.content")
    text = _content_text(content, f"{where}.content")
    part_type = "output_text" if role == "assistant" else "input_text"
    part: dict[str, Any] = {"type": part_type, "text": text}
    if role == "assistant":
        part["annotations"] = []
    return _message(str(role), [part])


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_type(where, "a string or an array of content parts", content)
    texts: list[str] = []
    for j, part in enumerate(content):
        texts.append(_part_text(part, f"{where}[{j}]"))
    return "\n".join(t for t in texts if t)


def _part_text(part: Any, where: str) -> str:
    if not isinstance(part, dict):
        raise invalid_type(where, "an object", part)
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        text = part.get("text")
        if not isinstance(text, str):
            raise missing_parameter(f"{where}.text")
        return text
    if kind == "refusal":
        return str(part.get("refusal", ""))
    if kind in _MEDIA_PARTS:
        source = " by URL" if part.get("image_url") or part.get("file_url") else ""
        raise unsupported(
            f"{where}.type",
            f"The local engine cannot read '{kind}' content{source} ({where}): it understands text only, "
            f"so {_MEDIA_PARTS[kind]} are not supported.",
        )
    raise invalid_value(f"{where}.type", f"Invalid value: '{kind}'. Supported values are: 'input_text'.")


def _tool_output(item: dict[str, Any], where: str) -> str:
    output = item.get("output")
    if output is None:
        raise missing_parameter(f"{where}.output")
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _content_text(output, f"{where}.output")
    raise invalid_type(f"{where}.output", "a string or an array of content parts", output)


def _message(role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": content}


# tools ----------------------------------------------------------------------------------------------------
def _parse_tools(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_type("tools", "an array", raw)
    tools: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid_type(where, "an object", tool)
        kind = tool.get("type")
        if kind in HOSTED_TOOLS:
            raise unsupported(
                f"{where}.type",
                f"The local engine does not support the hosted tool '{kind}' ({where}): "
                f"{HOSTED_TOOLS[kind]} needs OpenAI's servers. Only function tools are available offline.",
            )
        if kind != "function":
            raise invalid_value(
                f"{where}.type", f"Invalid value: '{kind}'. Supported values are: 'function'."
            )
        tools.append(_function_tool(tool, where))
        if tools[-1]["name"] in names:
            raise invalid_value(f"{where}.name", f"Duplicate tool name: '{tools[-1]['name']}'.")
        names.add(tools[-1]["name"])
    return tools


def _function_tool(tool: dict[str, Any], where: str) -> dict[str, Any]:
    name = tool.get("name")
    if name is None:
        raise missing_parameter(f"{where}.name")  # also the answer to the nested Chat Completions shape
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise invalid_value(
            f"{where}.name", f"Invalid '{where}.name': string does not match pattern '^[a-zA-Z0-9_-]+$'."
        )
    params = tool.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise invalid_type(f"{where}.parameters", "an object", params)
    strict = tool.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise invalid_type(f"{where}.strict", "a boolean", strict)
    if strict:
        problem = strict_schema_problem(params or {"type": "object", "properties": {}})
        if problem:
            raise ApiError(
                f"Invalid schema for function '{name}': {problem}",
                param=f"{where}.parameters",
                code="invalid_function_parameters",
            )
    return {
        "type": "function",
        "name": name,
        "description": tool.get("description"),
        "parameters": params if params is not None else {"type": "object", "properties": {}},
        "strict": strict if strict is not None else False,
    }


def _parse_tool_choice(raw: Any, tools: list[dict[str, Any]]) -> str | dict[str, Any]:
    if isinstance(raw, str):
        if raw not in ("auto", "none", "required"):
            raise invalid_value(
                "tool_choice",
                f"Invalid value: '{raw}'. Supported values are: 'none', 'auto', and 'required'.",
            )
        if raw == "required" and not tools:
            raise invalid_value(
                "tool_choice", "Tool choice 'required' must be specified with 'tools' parameter."
            )
        return raw
    if not isinstance(raw, dict):
        raise invalid_type("tool_choice", "a string or an object", raw)
    kind = raw.get("type")
    names = {t["name"] for t in tools}
    if kind == "function":
        name = raw.get("name")
        if not isinstance(name, str):
            raise missing_parameter("tool_choice.name")
        if name not in names:
            raise invalid_value("tool_choice", f"Tool choice '{name}' not found in 'tools' parameter.")
        return {"type": "function", "name": name}
    if kind == "allowed_tools":
        allowed = raw.get("tools")
        if not isinstance(allowed, list) or not allowed:
            raise missing_parameter("tool_choice.tools")
        for j, entry in enumerate(allowed):
            if not isinstance(entry, dict) or entry.get("name") not in names:
                raise invalid_value(f"tool_choice.tools[{j}]", "Allowed tool not found in 'tools' parameter.")
        mode = raw.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise invalid_value("tool_choice.mode", f"Invalid value: '{mode}'.")
        return {"type": "allowed_tools", "mode": mode, "tools": allowed}
    if isinstance(kind, str) and (kind in HOSTED_TOOLS or kind.startswith("web_search")):
        raise unsupported("tool_choice.type", f"The local engine does not support the hosted tool '{kind}'.")
    raise invalid_value("tool_choice.type", f"Invalid value: '{kind}'.")


# scalars and small objects --------------------------------------------------------------------------------
def _parse_max_tokens(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise invalid_type("max_output_tokens", "an integer", raw)
    if raw < MIN_OUTPUT_TOKENS:
        raise ApiError(
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_OUTPUT_TOKENS}, but got {raw} instead.",
            param="max_output_tokens",
            code="integer_below_min_value",
        )
    return raw


def _parse_metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid_type("metadata", "an object", raw)
    if len(raw) > 16:
        raise invalid_value("metadata", "Invalid 'metadata': too many properties. Expected at most 16.")
    for key, value in raw.items():
        if len(key) > 64:
            raise invalid_value(
                "metadata", f"Invalid 'metadata': key '{key[:20]}…' is longer than 64 characters."
            )
        if not isinstance(value, str):
            raise invalid_type(f"metadata.{key}", "a string", value)
        if len(value) > 512:
            raise invalid_value(
                f"metadata.{key}", "Invalid 'metadata': values are at most 512 characters long."
            )
    return dict(raw)


def _parse_text(raw: Any) -> tuple[dict[str, Any], str]:
    if raw is None:
        return {"type": "text"}, "medium"
    if not isinstance(raw, dict):
        raise invalid_type("text", "an object", raw)
    verbosity = raw.get("verbosity", "medium")
    if verbosity not in ("low", "medium", "high"):
        raise invalid_value("text.verbosity", f"Invalid value: '{verbosity}'.")
    fmt = raw.get("format", {"type": "text"})
    if not isinstance(fmt, dict):
        raise invalid_type("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return {"type": kind}, verbosity
    if kind != "json_schema":
        raise invalid_value(
            "text.format.type",
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_schema', and 'json_object'.",
        )
    return _json_schema_format(fmt), verbosity


def _json_schema_format(fmt: dict[str, Any]) -> dict[str, Any]:
    name = fmt.get("name")
    if name is None:
        raise missing_parameter("text.format.name")
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise invalid_value("text.format.name", "Invalid 'text.format.name': string does not match pattern.")
    schema = fmt.get("schema")
    if schema is None:
        raise missing_parameter("text.format.schema")
    if not isinstance(schema, dict):
        raise invalid_type("text.format.schema", "an object", schema)
    strict = fmt.get("strict")
    if strict:
        problem = strict_schema_problem(schema)
        if problem:
            raise ApiError(
                f"Invalid schema for response_format '{name}': {problem}",
                param="text.format.schema",
                code="invalid_json_schema",
            )
    out: dict[str, Any] = {"type": "json_schema", "name": name, "schema": schema, "strict": bool(strict)}
    if isinstance(fmt.get("description"), str):
        out["description"] = fmt["description"]
    return out


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_type(key, "a string", value)
    return value


def _optional_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid_type(key, "a boolean", value)
    return value


def _optional_number(body: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_type(key, "a number", value)
    if not lo <= value <= hi:
        raise invalid_value(key, f"Invalid '{key}': expected a value between {lo:g} and {hi:g}, got {value}.")
    return float(value)
