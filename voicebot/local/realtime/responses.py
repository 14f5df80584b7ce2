"""Responses of the Realtime emulation: creation, the brain, event order, audio deltas, cancel (pure).

The order follows the GA reference: ``response.created`` → ``response.output_item.added`` →
``conversation.item.added`` → ``response.content_part.added`` → interleaved transcript and audio deltas →
``response.output_audio.done`` → ``response.output_audio_transcript.done`` → ``response.content_part.done`` →
``response.output_item.done`` → ``conversation.item.done`` → ``response.done`` → ``rate_limits.updated``.
Function calls have no content parts; their arguments stream as ``function_call_arguments`` deltas.
"""

from __future__ import annotations

import base64
import copy
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from voicebot.audio.chunk import PcmChunk
from voicebot.local.brain import Brain, FunctionCall
from voicebot.local.realtime.actions import Action, StopSynthesis, Synthesize
from voicebot.local.realtime.audio_codec import OutputEncoder, bytes_per_ms, split_deltas
from voicebot.local.realtime.ids import IdFactory
from voicebot.local.realtime.items import Conversation, StoredItem, to_turns, validate_item
from voicebot.local.realtime.session_config import (
    SESSION_FIELDS,
    ConfigError,
    array,
    audio_format,
    invalid_value,
    obj,
    string,
    voice_check,
)
from voicebot.local.speech.text import split_sentences

Phase = Literal["waiting", "audio", "done"]


def _conversation(v: Any, p: str) -> None:
    if not isinstance(v, str):
        raise ConfigError("invalid_type", f"Invalid type for '{p}': expected a string.", p)


def _input_entry(v: Any, p: str) -> None:
    if isinstance(v, dict) and v.get("type") == "item_reference":
        obj({"type": string(), "id": string()}, required=("id",))(v, p)
    else:
        validate_item(v, p)


def _metadata(v: Any, p: str) -> None:
    obj({}, extra_ok=True, nullable=True)(v, p)
    if isinstance(v, dict):
        if len(v) > 16:
            raise ConfigError("invalid_value", f"Invalid '{p}': at most 16 keys are allowed.", p)
        for k, val in v.items():
            if not isinstance(val, str) or len(k) > 64 or len(val) > 512:
                raise ConfigError(
                    "invalid_value",
                    f"Invalid '{p}.{k}': expected a string of at most 512 "
                    "characters under a key of at most 64.",
                    f"{p}.{k}",
                )


RESPONSE_CHECK = obj(
    {
        "conversation": _conversation,
        "input": array(_input_entry, 2000),
        "output_modalities": SESSION_FIELDS["output_modalities"],
        "instructions": string(),
        "tools": SESSION_FIELDS["tools"],
        "tool_choice": SESSION_FIELDS["tool_choice"],
        "max_output_tokens": SESSION_FIELDS["max_output_tokens"],
        "audio": obj({"output": obj({"format": audio_format(), "voice": voice_check})}),
        "metadata": _metadata,
        "prompt": SESSION_FIELDS["prompt"],
        "reasoning": SESSION_FIELDS["reasoning"],
        "parallel_tool_calls": SESSION_FIELDS["parallel_tool_calls"],
    }
)


@dataclass(slots=True)
class Response:
    id: str
    in_conversation: bool
    modalities: list[str]
    instructions: str
    tools: list[dict[str, Any]]
    tool_choice: Any
    max_output_tokens: Any
    voice: Any
    out_format: dict[str, Any]
    speed: float
    metadata: dict[str, Any] | None
    context: list[StoredItem] | None  # None: the default conversation at generation time
    status: str = "in_progress"
    status_details: dict[str, Any] | None = None
    phase: Phase = "waiting"
    output: list[dict[str, Any]] = field(default_factory=list)
    message: StoredItem | None = None
    encoder: OutputEncoder | None = None
    sentences: list[str] = field(default_factory=list)
    chunk_no: int = 0
    words_done: int = 0  # words of the current sentence already sent
    transcript: str = ""
    text_out: str = ""
    audio_ms: float = 0.0
    input_chars: int = 0
    input_audio_ms: float = 0.0
    usage: dict[str, Any] | None = None


class ResponsesMixin:
    """Response handling of ``RealtimeCore`` (shares its state)."""

    ids: IdFactory
    conv: Conversation
    session: dict[str, Any]
    conversation_id: str
    _brain: Brain
    _active_default: str | None
    _responses: dict[str, Response]
    _audio_output_started: bool
    _idle_deadline: float | None
    _tokens_used: int

    def _emit(self, type_: str, **fields: Any) -> None: ...  # provided by RealtimeCore
    def _act(self, action: Action) -> None: ...
    def _error(
        self,
        code: str,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None: ...
    def _item_event(self, type_: str, st: StoredItem) -> None: ...
    def _on_response_finished(self, resp: Response, now: float) -> None: ...

    # creation ------------------------------------------------------------
    def _create_response(self, params: Any, event_id: str | None, now: float) -> None:
        params = {} if params is None else params
        try:
            RESPONSE_CHECK(params, "response")
            context = self._resolve_input(params.get("input"))
        except ConfigError as err:
            self._error(err.code, err.message, err.param, event_id)
            return
        oob = params.get("conversation") == "none"
        if not oob and self._active_default is not None:
            self._error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._active_default}. "
                "Wait until the response is finished before creating a new one.",
                None,
                event_id,
            )
            return
        self._start_response(params, context, oob, now)

    def _start_response(
        self, params: dict[str, Any], context: list[StoredItem] | None, oob: bool, now: float
    ) -> Response:
        s = self.session
        out_audio = params.get("audio", {}).get("output", {})
        resp = Response(
            id=self.ids.response(),
            in_conversation=not oob,
            modalities=list(params.get("output_modalities") or s["output_modalities"]),
            instructions=params.get("instructions", s["instructions"]),
            tools=list(params.get("tools", s["tools"])),
            tool_choice=params.get("tool_choice", s["tool_choice"]),
            max_output_tokens=params.get("max_output_tokens", s["max_output_tokens"]),
            voice=out_audio.get("voice") or s["audio"]["output"]["voice"],
            out_format=copy.deepcopy(out_audio.get("format") or s["audio"]["output"]["format"]),
            speed=float(s["audio"]["output"].get("speed") or 1.0),
            metadata=params.get("metadata"),
            context=context,
        )
        if resp.out_format.get("type") == "audio/pcm":
            resp.out_format = {"type": "audio/pcm", "rate": 24000}
        self._responses[resp.id] = resp
        if not oob:
            self._active_default = resp.id
        self._idle_deadline = None
        self._emit("response.created", response=self._response_wire(resp))
        self._try_generate(resp, now)
        return resp

    def _resolve_input(self, entries: Any) -> list[StoredItem] | None:
        if entries is None:
            return None
        out: list[StoredItem] = []
        for i, e in enumerate(entries):
            if e.get("type") == "item_reference":
                st = self.conv.get(e["id"])
                if st is None:
                    raise ConfigError(
                        "invalid_value",
                        f"Item with id '{e['id']}' not found in the conversation.",
                        f"response.input[{i}].id",
                    )
                out.append(st)
            else:
                item = validate_item(e, f"response.input[{i}]")
                item.setdefault("id", self.ids.item())
                out.append(StoredItem(item))
        return out

    def _context(self, resp: Response) -> list[StoredItem]:
        return resp.context if resp.context is not None else self.conv.stored()

    # generation ------------------------------------------------------------
    def _try_generate(self, resp: Response, now: float) -> None:
        """Run the brain once every user audio item in the context has been heard."""
        if resp.phase != "waiting":
            return
        items = self._context(resp)
        if any(st.waiting_stt for st in items):
            return
        turns = to_turns(items)
        resp.input_chars = sum(len(t.text) + len(t.arguments) for t in turns) + len(resp.instructions)
        resp.input_audio_ms = sum(
            len(st.audio) / bytes_per_ms(st.audio_format)
            for st in items
            if st.audio is not None and st.item.get("role") == "user"
        )
        reply = self._brain.respond(turns, resp.tools, resp.instructions, resp.tool_choice)
        if reply.is_call:
            self._emit_calls(resp, reply.calls)
            self._finish(resp, "completed", now)
        elif "audio" in resp.modalities:
            self._start_audio(resp, reply.text)
        else:
            self._emit_text(resp, reply.text)
            self._finish(resp, "completed", now)

    def _new_output_item(self, resp: Response, item: dict[str, Any]) -> StoredItem:
        st = StoredItem(item, response_id=resp.id)
        resp.output.append(item)
        self._emit(
            "response.output_item.added",
            response_id=resp.id,
            output_index=len(resp.output) - 1,
            item=copy.deepcopy(item),
        )
        if resp.in_conversation:
            self.conv.add(st)
            self._item_event("conversation.item.added", st)
        return st

    def _done_output_item(self, resp: Response, st: StoredItem) -> None:
        index = resp.output.index(st.item)
        self._emit(
            "response.output_item.done", response_id=resp.id, output_index=index, item=copy.deepcopy(st.item)
        )
        if resp.in_conversation and st.id in self.conv:
            self._item_event("conversation.item.done", st)

    def _emit_calls(self, resp: Response, calls: tuple[FunctionCall, ...]) -> None:
        for call in calls:
            call_id = self.ids.call()
            item = {
                "id": self.ids.item(),
                "object": "realtime.item",
                "type": "function_call",
                "status": "in_progress",
                "name": call.name,
                "call_id": call_id,
                "arguments": "",
            }
            st = self._new_output_item(resp, item)
            index = len(resp.output) - 1
            step = max(1, math.ceil(len(call.arguments) / 3))
            for i in range(0, len(call.arguments), step):
                self._emit(
                    "response.function_call_arguments.delta",
                    response_id=resp.id,
                    item_id=st.id,
                    output_index=index,
                    call_id=call_id,
                    delta=call.arguments[i : i + step],
                )
            self._emit(
                "response.function_call_arguments.done",
                response_id=resp.id,
                item_id=st.id,
                output_index=index,
                call_id=call_id,
                name=call.name,
                arguments=call.arguments,
            )
            item.update(status="completed", arguments=call.arguments)
            resp.text_out += call.arguments
            self._done_output_item(resp, st)

    def _message_item(self, resp: Response, part_type: str) -> StoredItem:
        item = {
            "id": self.ids.item(),
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        st = self._new_output_item(resp, item)
        part: dict[str, Any] = (
            {"type": part_type, "transcript": ""} if part_type == "audio" else {"type": "text", "text": ""}
        )
        self._emit(
            "response.content_part.added",
            response_id=resp.id,
            item_id=st.id,
            output_index=len(resp.output) - 1,
            content_index=0,
            part=part,
        )
        resp.message = st
        return st

    def _emit_text(self, resp: Response, text: str) -> None:
        st = self._message_item(resp, "text")
        ids = {"response_id": resp.id, "item_id": st.id, "output_index": 0, "content_index": 0}
        for i, word in enumerate(text.split()):
            delta = word if i == 0 else " " + word
            self._emit(
                "response.output_text.delta", **ids, delta=delta, obfuscation=self.ids.obfuscation(len(delta))
            )
        text = " ".join(text.split())
        resp.text_out = text
        self._emit("response.output_text.done", **ids, text=text)
        self._emit("response.content_part.done", **ids, part={"type": "text", "text": text})
        st.item.update(status="completed", content=[{"type": "output_text", "text": text}])
        self._done_output_item(resp, st)

    # audio ------------------------------------------------------------
    def _start_audio(self, resp: Response, text: str) -> None:
        st = self._message_item(resp, "audio")
        st.audio = bytearray()
        st.audio_format = resp.out_format
        resp.phase = "audio"
        resp.encoder = OutputEncoder(resp.out_format)
        resp.sentences = split_sentences(text)
        resp.text_out = " ".join(resp.sentences)
        voice = resp.voice if isinstance(resp.voice, str) else None
        self._act(Synthesize(resp.id, resp.text_out, voice, resp.speed))

    def synthesis_chunk(self, response_id: str, chunk: PcmChunk, now: float) -> None:
        """A synthesized chunk (24 kHz) of the next sentence of ``response_id``."""
        resp = self._responses.get(response_id)
        if resp is None or resp.phase != "audio" or resp.encoder is None:
            return
        self._audio_output_started = True
        pieces = split_deltas(resp.encoder.encode(chunk), resp.out_format)
        words = resp.sentences[resp.chunk_no].split() if resp.chunk_no < len(resp.sentences) else []
        n = len(pieces)
        for k, piece in enumerate(pieces):
            self._send_words(resp, words, math.ceil((k + 1) * len(words) / n))
            self._send_audio(resp, piece)
        self._send_words(resp, words, len(words))
        resp.chunk_no += 1
        resp.words_done = 0

    def synthesis_done(self, response_id: str, now: float) -> None:
        resp = self._responses.get(response_id)
        if resp is None or resp.phase != "audio" or resp.encoder is None:
            return
        for piece in split_deltas(resp.encoder.flush(), resp.out_format):
            self._send_audio(resp, piece)
        while resp.chunk_no < len(resp.sentences):
            words = resp.sentences[resp.chunk_no].split()
            self._send_words(resp, words, len(words))
            resp.chunk_no += 1
            resp.words_done = 0
        self._end_audio(resp, "completed")
        self._finish(resp, "completed", now)

    def synthesis_failed(self, response_id: str, message: str, now: float) -> None:
        """TTS failed: end the audio part with what was sent and fail the response."""
        resp = self._responses.get(response_id)
        if resp is None or resp.phase != "audio":
            return
        self._end_audio(resp, "incomplete")
        resp.status_details = {
            "type": "failed",
            "error": {"type": "server_error", "code": "speech_backend_error", "message": message},
        }
        self._finish(resp, "failed", now)

    def _send_words(self, resp: Response, words: list[str], upto: int) -> None:
        assert resp.message is not None
        while resp.words_done < min(upto, len(words)):
            word = words[resp.words_done]
            delta = word if not resp.transcript else " " + word
            resp.transcript += delta
            resp.words_done += 1
            self._emit(
                "response.output_audio_transcript.delta",
                response_id=resp.id,
                item_id=resp.message.id,
                output_index=0,
                content_index=0,
                delta=delta,
                obfuscation=self.ids.obfuscation(len(delta)),
            )

    def _send_audio(self, resp: Response, piece: bytes) -> None:
        if not piece or resp.message is None:
            return
        assert resp.message.audio is not None
        resp.message.audio.extend(piece)
        resp.audio_ms += len(piece) / bytes_per_ms(resp.out_format)
        self._emit(
            "response.output_audio.delta",
            response_id=resp.id,
            item_id=resp.message.id,
            output_index=0,
            content_index=0,
            delta=base64.b64encode(piece).decode("ascii"),
        )

    def _end_audio(self, resp: Response, status: str) -> None:
        st = resp.message
        assert st is not None
        ids = {"response_id": resp.id, "item_id": st.id, "output_index": 0, "content_index": 0}
        self._emit("response.output_audio.done", **ids)
        self._emit("response.output_audio_transcript.done", **ids, transcript=resp.transcript)
        self._emit("response.content_part.done", **ids, part={"type": "audio", "transcript": resp.transcript})
        st.item.update(status=status, content=[{"type": "output_audio", "transcript": resp.transcript}])
        st.extra["audio_ms"] = resp.audio_ms
        self._done_output_item(resp, st)
        resp.phase = "done"

    # end of a response ------------------------------------------------------------
    def _cancel(self, resp: Response, reason: str, now: float) -> None:
        if resp.phase == "audio":
            self._act(StopSynthesis(resp.id))
            self._end_audio(resp, "incomplete")
        resp.status_details = {"type": "cancelled", "reason": reason}
        self._finish(resp, "cancelled", now)

    def _finish(self, resp: Response, status: str, now: float) -> None:
        resp.phase = "done"
        resp.status = status
        if status == "completed":
            resp.status_details = None
        resp.usage = self._usage(resp)
        self._responses.pop(resp.id, None)
        if self._active_default == resp.id:
            self._active_default = None
        self._emit("response.done", response=self._response_wire(resp))
        self._tokens_used += resp.usage["total_tokens"]
        self._emit(
            "rate_limits.updated",
            rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {
                    "name": "tokens",
                    "limit": 40000,
                    "remaining": max(0, 40000 - self._tokens_used % 40000),
                    "reset_seconds": round(self._tokens_used % 40000 * 0.0015, 3),
                },
            ],
        )
        self._on_response_finished(resp, now)

    def _usage(self, resp: Response) -> dict[str, Any]:
        text_in = math.ceil(resp.input_chars / 4)
        audio_in = math.ceil(resp.input_audio_ms / 100)
        text_out = math.ceil(len(resp.text_out) / 4)
        audio_out = math.ceil(resp.audio_ms / 50)
        return {
            "total_tokens": text_in + audio_in + text_out + audio_out,
            "input_tokens": text_in + audio_in,
            "output_tokens": text_out + audio_out,
            "input_token_details": {
                "text_tokens": text_in,
                "audio_tokens": audio_in,
                "image_tokens": 0,
                "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }

    def _response_wire(self, resp: Response) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": resp.id,
            "status": resp.status,
            "status_details": copy.deepcopy(resp.status_details),
            "output": copy.deepcopy(resp.output),
            "conversation_id": self.conversation_id if resp.in_conversation else None,
            "output_modalities": list(resp.modalities),
            "max_output_tokens": resp.max_output_tokens,
            "audio": {"output": {"format": copy.deepcopy(resp.out_format), "voice": resp.voice}},
            "usage": copy.deepcopy(resp.usage),
            "metadata": copy.deepcopy(resp.metadata),
        }


__all__ = ["RESPONSE_CHECK", "Response", "ResponsesMixin", "invalid_value"]
