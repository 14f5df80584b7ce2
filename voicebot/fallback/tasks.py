"""Post-call tasks on the non-realtime API: a structured summary, and the transcript as JSON and plain text.

All of them take a finished ``Call`` (nothing here touches ``call.py``)::

    stats = await call.run()
    record = await post_call(call, client, model=settings.summary_model, calls_dir=settings.calls_dir)

``summarize`` asks ``/v1/responses`` for ``text.format: json_schema`` (strict) built from ``CallSummary``
and validates the answer with pydantic. ``post_call`` puts the transcript, the stats and the summary
together (``call_record``) and, when ``calls_dir`` is set, stores them as ``<calls_dir>/<call id>.json`` and
``<call id>.txt``; it returns the record either way, so a server may store it elsewhere instead. A failed
summary is logged and recorded as ``summary: null`` with ``summary_error``; it never fails the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path
from typing import Any, Literal

import pydantic
from openai import AsyncOpenAI
from pydantic import BaseModel, ConfigDict, Field

from voicebot.call import Call
from voicebot.errors import ProtocolError, UpstreamError
from voicebot.fallback.openai_http import translated

log = logging.getLogger("voicebot.fallback")

SUMMARY_INSTRUCTIONS = (
    "You summarize phone calls between a caller and a voice assistant for the team that follows up. "
    "Use only what the transcript says. Write short, factual English."
)


class FollowUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="What has to be done, in a few words.")
    owner: Literal["agent", "caller", "staff"] = Field(description="Who has to do it.")
    due: str | None = Field(description="When, as the caller put it (null if not said).")


class CallSummary(BaseModel):
    """The post-call summary (also the JSON schema the model must answer in)."""

    model_config = ConfigDict(extra="forbid")

    reason_for_call: str = Field(description="Why the caller called, in one sentence.")
    outcome: Literal["resolved", "unresolved", "escalated", "transferred", "abandoned"] = Field(
        description="How the call ended for the caller's request."
    )
    summary: str = Field(description="Two or three sentences on what happened.")
    follow_ups: list[FollowUp] = Field(description="Actions promised or needed after the call.")
    caller_sentiment: Literal["positive", "neutral", "negative"] = Field(description="The caller's mood.")
    topics: list[str] = Field(description="A few keywords.")


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema in the shape strict structured output accepts: every object closed
    (``additionalProperties: false``) with all its properties required; titles and defaults removed."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: fix(v) for k, v in node.items() if k not in ("title", "default")}
            if out.get("type") == "object" and isinstance(out.get("properties"), dict):
                out["additionalProperties"] = False
                out["required"] = list(out["properties"])
            return out
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    result: dict[str, Any] = fix(model.model_json_schema())
    return result


SUMMARY_SCHEMA = strict_schema(CallSummary)


# transcript ---------------------------------------------------------------------------------------------


def transcript_lines(call: Call) -> list[dict[str, Any]]:
    """The call's transcript, one entry per item (a message cut by a barge-in keeps its last, heard text),
    in the order the items started; ``at_s`` is seconds from the start of the call."""
    order: list[str] = []
    last: dict[str, dict[str, Any]] = {}
    for line in call.transcript:
        if line.item_id not in last:
            order.append(line.item_id)
        at = round(max(0.0, line.at - call.stats.started_at), 3)
        first_at = last[line.item_id]["at_s"] if line.item_id in last else at
        last[line.item_id] = {"role": line.role, "text": line.text, "item_id": line.item_id, "at_s": first_at}
    return [last[i] for i in order if last[i]["text"].strip()]


def transcript_text(call: Call) -> str:
    """Plain text, one line per turn: ``[mm:ss] caller: …`` / ``[mm:ss] agent: …``."""
    out = []
    for line in transcript_lines(call):
        minutes, seconds = divmod(int(line["at_s"]), 60)
        who = "caller" if line["role"] == "user" else "agent"
        out.append(f"[{minutes:02d}:{seconds:02d}] {who}: {line['text']}")
    return "\n".join(out) + ("\n" if out else "")


def call_record(call: Call, summary: CallSummary | None = None, **extra: Any) -> dict[str, Any]:
    """Everything worth keeping about a finished call, JSON-ready."""
    stats = call.stats
    duration = (stats.ended_at or stats.started_at) - stats.started_at
    return {
        "call_id": call.call_id,
        "caller": call.caller,
        "exported_at": time.time(),
        "duration_s": round(duration, 3),
        "end_reason": stats.end_reason,
        "stats": {
            "turn_latencies_ms": [round(x, 1) for x in stats.turn_latencies_ms],
            "barge_ins": stats.barge_ins,
            "tool_calls": stats.tool_calls,
        },
        "transcript": transcript_lines(call),
        "summary": summary.model_dump() if summary is not None else None,
        **extra,
    }


# summary ------------------------------------------------------------------------------------------------


async def summarize(client: AsyncOpenAI, transcript: str, *, model: str) -> CallSummary:
    """A ``CallSummary`` of ``transcript`` (plain text), validated against the schema."""
    with translated("call summary"):
        response = await client.responses.create(
            model=model,
            instructions=SUMMARY_INSTRUCTIONS,
            input=[{"role": "user", "content": f"Summarize this call transcript as JSON:\n\n{transcript}"}],
            text={
                "format": {
                    "type": "json_schema",
                    "name": "call_summary",
                    "schema": SUMMARY_SCHEMA,
                    "strict": True,
                }
            },
            store=False,
        )
    try:
        return CallSummary.model_validate_json(response.output_text)
    except pydantic.ValidationError as exc:
        raise ProtocolError(f"the call summary does not match its schema: {exc}") from exc


def _safe_name(call_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", call_id)[:128] or "call"


def store_call(calls_dir: Path, record: dict[str, Any], text: str) -> Path:
    """Write ``<calls_dir>/<call id>.json`` and ``.txt`` (the directory is created); returns the JSON path."""
    calls_dir.mkdir(parents=True, exist_ok=True)
    name = _safe_name(str(record["call_id"]))
    path = calls_dir / f"{name}.json"
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (calls_dir / f"{name}.txt").write_text(text, encoding="utf-8")
    return path


async def post_call(
    call: Call,
    client: AsyncOpenAI,
    *,
    model: str,
    calls_dir: Path | None = None,
) -> dict[str, Any]:
    """Summarize a finished call and (with ``calls_dir``) store it; returns the record."""
    text = transcript_text(call)
    summary: CallSummary | None = None
    extra: dict[str, Any] = {}
    if text.strip():
        try:
            summary = await summarize(client, text, model=model)
        except (UpstreamError, ProtocolError) as exc:
            log.warning("call %s: no summary: %s", call.call_id, exc.message)
            extra["summary_error"] = exc.message
    record = call_record(call, summary, **extra)
    if calls_dir is not None:
        path = await asyncio.to_thread(store_call, calls_dir, record, text)
        log.info("call %s stored in %s", call.call_id, path)
    return record
