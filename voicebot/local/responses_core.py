"""The Responses API emulation (pure): a validated request + the stored conversation → a response object and,
for ``stream: true``, the exact SSE event sequence of the official API.

Flow: ``conversation_for`` joins the previous response's conversation with the new input and checks that every
function call has its output; ``answer`` asks the brain and shapes its ``Reply`` into output items (text,
structured JSON for ``text.format`` json_schema / json_object, or function calls); ``stream_events`` spells a
finished response out as ``response.created`` … ``response.completed``. Ids come from ``secrets``; the clock
is an argument (``now``).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
from typing import Any

from voicebot.local.api_error import ApiError
from voicebot.local.brain import CANT_LOOK_UP, Brain, FunctionCall, Reply, Turn
from voicebot.local.brain_args import fill_arguments
from voicebot.local.responses_request import ResponsesRequest
from voicebot.local.structured import fill_schema

_TOKEN = re.compile(r"\w+|[^\w\s]")
_DELTA = re.compile(r"\s*\S+|\s+$")
_ARG_CHUNK = 12
_OBFUSCATION_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_id(prefix: str, nbytes: int = 24) -> str:
    return prefix + secrets.token_hex(nbytes)


def count_tokens(text: str) -> int:
    """A deterministic token estimate: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def truncate_to_tokens(text: str, limit: int) -> str:
    """The prefix of ``text`` holding its first ``limit`` tokens."""
    for i, m in enumerate(_TOKEN.finditer(text)):
        if i == limit:
            return text[: m.start()].rstrip()
    return text


# conversation ---------------------------------------------------------------------------------------------
def conversation_for(previous: tuple[dict[str, Any], ...], req: ResponsesRequest) -> list[dict[str, Any]]:
    """The whole conversation this request answers; every function call must have its output."""
    conversation = [*previous, *req.items]
    calls = [item["call_id"] for item in conversation if item["type"] == "function_call"]
    outputs = {item["call_id"] for item in conversation if item["type"] == "function_call_output"}
    for call_id in calls:
        if call_id not in outputs:
            raise ApiError(f"No tool output found for function call {call_id}.", param="input")
    known = set(calls)
    for item in conversation:
        if item["type"] == "function_call_output" and item["call_id"] not in known:
            raise ApiError(
                f"No tool call found for function call output with call_id {item['call_id']}.", param="input"
            )
    if req.text_format["type"] == "json_object" and not _mentions_json(conversation, req.instructions):
        raise ApiError(
            "Response input messages must contain the word 'json' in some form to use 'text.format' of type "
            "'json_object'.",
            param="input",
        )
    return conversation


def _mentions_json(conversation: list[dict[str, Any]], instructions: str | None) -> bool:
    texts = [instructions or ""] + [_item_text(item) for item in conversation if item["type"] == "message"]
    return any("json" in t.lower() for t in texts)


def _item_text(item: dict[str, Any]) -> str:
    if item["type"] == "message":
        return "\n".join(str(p.get("text", "")) for p in item["content"])
    if item["type"] == "function_call":
        return f"{item['name']} {item['arguments']}"
    return str(item.get("output", ""))


def turns_of(conversation: list[dict[str, Any]]) -> list[Turn]:
    turns: list[Turn] = []
    for item in conversation:
        if item["type"] == "function_call":
            turns.append(Turn.call(item["name"], item["arguments"], item["call_id"]))
        elif item["type"] == "function_call_output":
            turns.append(Turn.output(item["call_id"], item["output"]))
        elif item["role"] == "user":
            turns.append(Turn.user(_item_text(item)))
        elif item["role"] == "assistant":
            turns.append(Turn.assistant(_item_text(item)))
        else:
            turns.append(Turn.system(_item_text(item)))
    return turns


def user_text(conversation: list[dict[str, Any]]) -> str:
    """Every user message of the conversation, joined: what structured output is filled from."""
    parts = [_item_text(i) for i in conversation if i["type"] == "message" and i["role"] == "user"]
    return " ".join(p.strip() for p in parts if p.strip())


# answering ------------------------------------------------------------------------------------------------
def answer(
    brain: Brain,
    req: ResponsesRequest,
    conversation: list[dict[str, Any]],
    *,
    response_id: str,
    now: float,
) -> dict[str, Any]:
    """The finished response object (status completed, or incomplete when cut by ``max_output_tokens``)."""
    tools, choice = _effective_tools(req)
    reply = brain.respond(turns_of(conversation), tools, req.instructions or "", tool_choice=choice)
    reply = _force_call_if_required(reply, tools, choice, conversation)
    output: list[dict[str, Any]] = []
    incomplete = False
    if reply.is_call and tools:
        calls = reply.calls if req.parallel_tool_calls else reply.calls[:1]
        output = [_function_call_item(c.name, c.arguments) for c in calls]
    else:
        text = _text_for(reply if reply.text else Reply(text=CANT_LOOK_UP), req, conversation)
        if req.max_output_tokens is not None and count_tokens(text) > req.max_output_tokens:
            text, incomplete = truncate_to_tokens(text, req.max_output_tokens), True
        output = [_message_item(text, "incomplete" if incomplete else "completed")]
    response = response_object(req, response_id=response_id, now=now, status="completed", output=output)
    response["completed_at"] = now
    response["usage"] = usage(req, conversation, output)
    if incomplete:
        response["status"] = "incomplete"
        response["completed_at"] = None
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    return response


def _effective_tools(req: ResponsesRequest) -> tuple[list[dict[str, Any]], str | dict[str, Any]]:
    choice = req.tool_choice
    if isinstance(choice, dict) and choice["type"] == "allowed_tools":
        allowed = {t.get("name") for t in choice["tools"]}
        return [t for t in req.tools if t["name"] in allowed], choice["mode"]
    if choice == "none":
        return [], "none"
    return req.tools, choice


def _force_call_if_required(
    reply: Reply,
    tools: list[dict[str, Any]],
    choice: str | dict[str, Any],
    conversation: list[dict[str, Any]],
) -> Reply:
    """``tool_choice`` required / a named function: the answer must be a call, even when the brain
    preferred to ask a question. Arguments the user's words do not give are filled from the schema."""
    forced = choice == "required" or isinstance(choice, dict)
    if not forced or reply.is_call or not tools:
        return reply
    name = choice["name"] if isinstance(choice, dict) else tools[0]["name"]
    tool = next(t for t in tools if t["name"] == name)
    schema = tool.get("parameters") or {}
    text = _last_user_text(conversation)
    filled, missing = fill_arguments(text, schema)
    raw_props = schema.get("properties")
    props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
    for prop in missing:
        filled[prop] = fill_schema(props.get(prop, {}), text)
    for prop, sub in props.items():
        filled.setdefault(prop, fill_schema(sub, text))
    return Reply(calls=(FunctionCall(name, json.dumps(filled)),))


def _last_user_text(conversation: list[dict[str, Any]]) -> str:
    for item in reversed(conversation):
        if item["type"] == "message" and item["role"] == "user":
            return _item_text(item)
    return ""


def _text_for(reply: Reply, req: ResponsesRequest, conversation: list[dict[str, Any]]) -> str:
    fmt = req.text_format
    if fmt["type"] == "json_schema":
        return json.dumps(fill_schema(fmt["schema"], user_text(conversation)), ensure_ascii=False)
    if fmt["type"] == "json_object":
        return json.dumps({"response": reply.text}, ensure_ascii=False)
    return reply.text


def _message_item(text: str, status: str) -> dict[str, Any]:
    return {
        "id": new_id("msg_"),
        "type": "message",
        "status": status,
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
        "role": "assistant",
    }


def _function_call_item(name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": new_id("fc_"),
        "type": "function_call",
        "status": "completed",
        "arguments": arguments,
        "call_id": "call_" + secrets.token_urlsafe(18).replace("-", "A").replace("_", "b")[:24],
        "name": name,
    }


def usage(
    req: ResponsesRequest, conversation: list[dict[str, Any]], output: list[dict[str, Any]]
) -> dict[str, Any]:
    inp = count_tokens(req.instructions or "") + sum(count_tokens(_item_text(i)) + 3 for i in conversation)
    inp += sum(count_tokens(json.dumps(t)) for t in req.tools)
    out = sum(count_tokens(_item_text(i)) for i in output)
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + out,
    }


def response_object(
    req: ResponsesRequest, *, response_id: str, now: float, status: str, output: list[dict[str, Any]]
) -> dict[str, Any]:
    """The response object as the official API spells it (fields the engine does not use are echoed)."""
    echo = req.echo
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(now),
        "status": status,
        "background": False,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": None,
        "model": req.model,
        "output": output,
        "parallel_tool_calls": req.parallel_tool_calls,
        "previous_response_id": req.previous_response_id,
        "prompt_cache_key": echo.get("prompt_cache_key"),
        "reasoning": echo.get("reasoning", {"effort": None, "summary": None}),
        "safety_identifier": echo.get("safety_identifier"),
        "service_tier": "default",
        "store": req.store,
        "temperature": req.temperature if req.temperature is not None else 1.0,
        "text": {"format": req.text_format, "verbosity": req.verbosity},
        "tool_choice": req.tool_choice,
        "tools": req.tools,
        "top_logprobs": echo.get("top_logprobs", 0),
        "top_p": req.top_p if req.top_p is not None else 1.0,
        "truncation": echo.get("truncation", "disabled"),
        "usage": None,
        "user": echo.get("user"),
        "metadata": req.metadata,
    }


# streaming ------------------------------------------------------------------------------------------------
def stream_events(final: dict[str, Any], *, obfuscate: bool = True) -> list[dict[str, Any]]:
    """The SSE events of ``final`` in the official order, each with a ``sequence_number`` from 0."""
    start = copy.deepcopy(final)
    start.update(status="in_progress", output=[], usage=None, completed_at=None, incomplete_details=None)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": copy.deepcopy(start)},
    ]
    for index, item in enumerate(final["output"]):
        if item["type"] == "message":
            events.extend(_message_events(item, index, obfuscate))
        else:
            events.extend(_call_events(item, index))
    end = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
    events.append({"type": end, "response": final})
    for seq, event in enumerate(events):
        event["sequence_number"] = seq
    return events


def _message_events(item: dict[str, Any], index: int, obfuscate: bool) -> list[dict[str, Any]]:
    part = item["content"][0]
    text: str = part["text"]
    ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
    empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    events: list[dict[str, Any]] = [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**item, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **ids, "part": empty_part},
    ]
    for delta in split_text(text):
        event = {"type": "response.output_text.delta", **ids, "delta": delta, "logprobs": []}
        if obfuscate:
            event["obfuscation"] = _obfuscation(len(delta))
        events.append(event)
    events.append({"type": "response.output_text.done", **ids, "text": text, "logprobs": []})
    events.append({"type": "response.content_part.done", **ids, "part": part})
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def _call_events(item: dict[str, Any], index: int) -> list[dict[str, Any]]:
    ids = {"item_id": item["id"], "output_index": index}
    args: str = item["arguments"]
    events: list[dict[str, Any]] = [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**item, "status": "in_progress", "arguments": ""},
        }
    ]
    for i in range(0, len(args), _ARG_CHUNK):
        events.append(
            {"type": "response.function_call_arguments.delta", **ids, "delta": args[i : i + _ARG_CHUNK]}
        )
    events.append(
        {"type": "response.function_call_arguments.done", **ids, "arguments": args, "name": item["name"]}
    )
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def split_text(text: str) -> list[str]:
    """Word-sized deltas (leading whitespace kept) whose concatenation is exactly ``text``."""
    return _DELTA.findall(text)


def _obfuscation(delta_len: int) -> str:
    n = max(1, 16 - delta_len)
    return "".join(secrets.choice(_OBFUSCATION_ALPHABET) for _ in range(n))
