"""The client core of the GA Realtime protocol (pure, sans-I/O).

``RealtimeCore`` holds the state of one Realtime conversation across connections. The adapter feeds it every
text frame (``receive_message``), tells it when a connection opens or drops, and forwards the call's commands
(``append_audio``, ``send_text``, ``submit_tool_output``, ``truncate`` ...). It hands back JSON text frames to
send (``messages_to_send``) and ``voicebot.events`` for the call (``next_event``).

Rules it keeps (see docs in the methods for details):

* ``session.update`` in the GA shape is the first frame of every connection; input audio waits (bounded,
  oldest dropped) until its ``session.updated`` has arrived, so the first turn never runs on server defaults.
* Input batching (``SessionConfig.input_audio_batch_ms``): caller audio goes out as one
  ``input_audio_buffer.append`` per whole batch; any other frame sends the partial batch first (so a commit or
  a text item never overtakes audio spoken before it), and the adapter's timer calls ``flush_input_audio``
  when audio stops mid-batch. A batch not sent when the connection drops is held like early audio.
* At most one ``response.create`` is in flight or active: further requests queue (identical ones collapse) and
  go out after ``response.done``.
* Function calls: ``ToolCall`` is emitted as soon as a call's arguments are done. Outputs are held until the
  response is done and every call of that response has its output; then one ``function_call_output`` item per
  call and exactly one ``response.create`` follow. A response that ended ``cancelled``, ``failed`` or
  ``incomplete`` still gets its outputs as items but no ``response.create``: the user interrupted (or the
  model failed), and the next turn sees the outputs. A response lost with its connection does get one.
* Barge-in: ``speech_started`` (when turn detection interrupts) emits ``ClearAudio`` for the assistant item
  that may still be playing and mutes the rest of the active response's audio. ``truncate`` clamps to the
  audio received, deletes the item at 0 ms, sends nothing when the item was heard completely, and runs once.
* Reconnect: ``connection_lost`` ends the active response (``ResponseDone`` status ``failed``, reason
  ``connection_lost``); ``connection_opened`` sends a fresh ``session.update`` and replays the conversation
  as text items with new ids (``resolve_item_id`` maps old ids). If the lost response had produced nothing,
  a new ``response.create`` is queued so the user's turn still gets an answer.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from voicebot.audio.chunk import PcmChunk
from voicebot.errors import LocalError, ProtocolError
from voicebot.events import (
    AudioOut,
    ClearAudio,
    ErrorKind,
    ModelEvent,
    Notice,
    ResponseDone,
    ResponseStarted,
    SessionEnded,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    Transcript,
)
from voicebot.realtime.conversation import Conversation, Item, cut_text, item_from_wire
from voicebot.realtime.errors import model_error_from_event
from voicebot.realtime.wire import (
    MAX_APPEND_BYTES,
    SessionConfig,
    apply_changes,
    b64decode,
    b64encode,
    bytes_per_sample,
    decode_audio,
    encode_audio,
    session_payload,
)

_RESPONSE_OVERRIDES = frozenset(
    {
        "instructions",
        "tools",
        "tool_choice",
        "output_modalities",
        "max_output_tokens",
        "metadata",
        "conversation",
        "input",
        "voice",
        "prompt",
    }
)


@dataclass(slots=True)
class _Call:
    call_id: str
    name: str
    item_id: str
    response_id: str
    arguments: str | None = None
    output: str | None = None
    emitted: bool = False


@dataclass(slots=True)
class _Response:
    id: str
    calls: list[str] = field(default_factory=list)  # call_ids whose arguments are complete, in order
    done: bool = False
    status: str = "in_progress"
    had_output: bool = False
    outputs_sent: bool = False


_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'


def _s(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


class RealtimeCore:
    """Sans-I/O client of one Realtime conversation; see the module docstring."""

    def __init__(self, config: SessionConfig | None = None) -> None:
        self.config = config or SessionConfig()
        self.conversation = Conversation()
        self.expires_at: int | None = None  # unix seconds, from session.created
        self.session_id: str | None = None
        self.ended = False
        self.dropped_audio_ms = 0  # input audio discarded from the not-ready buffer
        self._out: list[str] = []
        self._events: deque[ModelEvent] = deque()
        self._connected = False
        self._ready = False
        self._generation = 0
        self._counter = 0
        self._update_event_id: str | None = None
        self._pending_audio: deque[tuple[bytes, int]] = deque()
        self._pending_samples = 0
        self._batch: list[bytes] = []  # caller audio not sent yet (``input_audio_batch_ms``)
        self._batch_samples = 0
        self.input_batches_sent = 0  # batches flushed so far (the adapter's flush timer watches it)
        self._active: str | None = None
        self._inflight: deque[tuple[str, dict[str, Any]]] = deque()  # (event_id, response params)
        self._queue: list[dict[str, Any]] = []
        self._responses: dict[str, _Response] = {}
        self._calls: dict[str, _Call] = {}
        self._muted: set[str] = set()  # responses whose further audio is dropped after a barge-in
        self._residual: dict[str, bytes] = {}
        self._last_audio_item: str | None = None
        self._aliases: dict[str, str] = {}
        self._user_speaking = False
        self._awaiting_transcript: set[str] = set()
        self._handlers = {
            "session.created": self._on_session_created,
            "session.updated": self._on_session_updated,
            "error": self._on_error,
            "input_audio_buffer.speech_started": self._on_speech_started,
            "input_audio_buffer.speech_stopped": self._on_speech_stopped,
            "input_audio_buffer.committed": self._on_committed,
            "conversation.item.added": self._on_item_added,
            "conversation.item.created": self._on_item_added,
            "conversation.item.done": self._on_item_done,
            "conversation.item.deleted": self._on_item_deleted,
            "conversation.item.input_audio_transcription.completed": self._on_user_transcript,
            "conversation.item.input_audio_transcription.failed": self._on_user_transcript_failed,
            "response.created": self._on_response_created,
            "response.done": self._on_response_done,
            "response.output_item.added": self._on_output_item_added,
            "response.output_item.done": self._on_output_item_done,
            "response.output_audio.delta": self._on_audio_delta,
            "response.output_audio.done": self._on_audio_done,
            "response.output_audio_transcript.delta": self._on_assistant_delta,
            "response.output_text.delta": self._on_assistant_delta,
            "response.output_audio_transcript.done": self._on_assistant_done,
            "response.output_text.done": self._on_assistant_done,
            "response.function_call_arguments.done": self._on_arguments_done,
        }

    # outputs ---------------------------------------------------------------------------------------------

    def messages_to_send(self) -> list[str]:
        """JSON text frames to send, in order (the list is handed over and cleared)."""
        out, self._out = self._out, []
        return out

    @property
    def has_output(self) -> bool:
        """Messages to send or events to read are waiting."""
        return bool(self._out or self._events)

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def next_event(self) -> ModelEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def input_rate(self) -> int:
        return self.config.input_rate

    @property
    def output_rate(self) -> int:
        return self.config.output_rate

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def ready(self) -> bool:
        """Connected and the connection's first ``session.updated`` has arrived."""
        return self._ready

    @property
    def response_active(self) -> bool:
        return self._active is not None or bool(self._inflight)

    @property
    def at_turn_boundary(self) -> bool:
        """Nothing in flight: no response active, requested or queued, the user is not speaking, no tool
        batch is open and no user transcript is outstanding. A safe moment to switch connections."""
        open_batch = any(not r.outputs_sent and (r.calls or not r.done) for r in self._responses.values())
        return (
            self._ready
            and not self.response_active
            and not self._queue
            and not self._user_speaking
            and not open_batch
            and not self._awaiting_transcript
        )

    def resolve_item_id(self, item_id: str) -> str:
        """The current id of an item that may have been replayed under a new id."""
        return self._aliases.get(item_id, item_id)

    # connection lifecycle --------------------------------------------------------------------------------

    def connection_opened(self, *, rollover: bool = False) -> None:
        """A new connection is open: send the full ``session.update`` and replay the conversation."""
        if self.ended:
            return
        self._generation += 1
        self._connected = True
        self._ready = False
        self._out.clear()
        self._update_event_id = self._event_id()
        self._send({"type": "session.update", "event_id": self._update_event_id, "session": self._session()})
        replayed = self._replay()
        if self._generation > 1:
            kind = "rollover" if rollover else "reconnected"
            self._emit(Notice(kind, {"connection": self._generation, "replayed_items": replayed}))

    def connection_lost(self) -> None:
        """The connection is gone: whatever it had in flight is lost (the state is kept for the replay)."""
        if not self._connected:
            return
        self._connected = False
        self._ready = False
        self._out.clear()
        if self._batch:  # not sent yet: it goes out on the next connection like other held audio
            batch, self._batch = self._batch, []
            self._hold_audio(b"".join(batch), self._batch_samples)
            self._batch_samples = 0
        self._user_speaking = False
        self._awaiting_transcript.clear()
        self._muted.clear()
        self._residual.clear()
        for _, params in self._inflight:
            self._enqueue(params)
        self._inflight.clear()
        if self._active is not None:
            response = self._responses[self._active]
            self._active = None
            response.done = True
            response.status = "lost"
            self._emit(ResponseDone(response.id, "failed", "connection_lost"))
            if not response.had_output:
                self._enqueue({})
            self._flush_tool_outputs(response)
        for item in self.conversation:
            item.audio_on_server = False

    def _replay(self) -> int:
        count = 0
        for item in list(self.conversation):
            payload = item.replay_payload()
            if payload is None:
                self.conversation.remove(item.id)
                continue
            new_id = self._item_id()
            payload["id"] = new_id
            self._send({"type": "conversation.item.create", "event_id": self._event_id(), "item": payload})
            self._rename(item.id, new_id)
            count += 1
        return count

    def _rename(self, old: str, new: str) -> None:
        self.conversation.rename(old, new)
        for key, value in self._aliases.items():
            if value == old:
                self._aliases[key] = new
        self._aliases[old] = new
        for call in self._calls.values():
            if call.item_id == old:
                call.item_id = new

    # commands -------------------------------------------------------------------------------------------

    def append_audio(self, chunk: PcmChunk) -> None:
        """Caller audio, already at the input wire rate. Held (bounded) until the session is ready."""
        if self.ended:
            return
        data = encode_audio(chunk, self.config.input_format)
        samples = chunk.num_samples
        if not self._ready:
            self._hold_audio(data, samples)
            return
        limit = self.config.input_audio_batch_ms * self.config.input_rate // 1000
        if not limit:
            self._send_audio(data)
            return
        self._batch.append(data)
        self._batch_samples += samples
        if self._batch_samples >= limit:
            self.flush_input_audio()

    @property
    def batched_input_samples(self) -> int:
        """Caller audio appended but not sent yet (waiting for a whole ``input_audio_batch_ms``)."""
        return self._batch_samples

    def flush_input_audio(self) -> None:
        """Send the batched caller audio now. Anything else the core sends flushes it first."""
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        self._batch_samples = 0
        self.input_batches_sent += 1
        self._send_audio(batch[0] if len(batch) == 1 else b"".join(batch))

    def _hold_audio(self, data: bytes, samples: int) -> None:
        self._pending_audio.append((data, samples))
        self._pending_samples += samples
        limit = self.config.max_buffered_audio_ms * self.config.input_rate // 1000
        while self._pending_samples > limit and self._pending_audio:
            _, dropped = self._pending_audio.popleft()
            self._pending_samples -= dropped
            self.dropped_audio_ms += dropped * 1000 // self.config.input_rate

    def _send_audio(self, data: bytes) -> None:
        if not self._connected:
            return
        step = MAX_APPEND_BYTES - MAX_APPEND_BYTES % 2
        for start in range(0, len(data), step):
            # what json.dumps would write (base64 needs no escaping), without its cost on the hot path
            self._out.append(_APPEND_HEAD + b64encode(data[start : start + step]) + '"}')

    def create_response(self, **overrides: Any) -> None:
        """Ask for a response (per-response ``overrides`` such as ``instructions``); queued while another is
        active. ``voice`` maps to ``audio.output.voice``."""
        unknown = set(overrides) - _RESPONSE_OVERRIDES
        if unknown:
            raise LocalError(f"unknown response.create options: {', '.join(sorted(unknown))}")
        params = {k: v for k, v in overrides.items() if k != "voice"}
        if "voice" in overrides:
            params["audio"] = {"output": {"voice": overrides["voice"]}}
        if isinstance(params.get("output_modalities"), str):
            params["output_modalities"] = [params["output_modalities"]]
        if self.ended:
            return
        self._enqueue(params)
        self._pump()

    def say(self, text: str) -> None:
        """Have the agent speak ``text`` now (a greeting or a filler line): a response whose instructions ask
        for exactly these words, with tools off. Queued behind an active response like any other."""
        spoken = json.dumps(text, ensure_ascii=False)
        self.create_response(
            instructions=f"Say exactly this, word for word, and nothing else: {spoken}", tool_choice="none"
        )

    def send_text(self, text: str, respond: bool = True) -> None:
        """A typed user message; with ``respond`` a response is requested after it."""
        if self.ended:
            return
        item = Item(id=self._item_id(), type="message", role="user", text=text)
        self.conversation.append(item)
        content = [{"type": "input_text", "text": text}]
        payload = {"id": item.id, "type": "message", "role": "user", "content": content}
        self._send({"type": "conversation.item.create", "event_id": self._event_id(), "item": payload})
        if respond:
            self.create_response()

    def submit_tool_output(self, call_id: str, output: str) -> bool:
        """The result of a ``ToolCall``. False when the call is unknown or already answered."""
        call = self._calls.get(call_id)
        if call is None or call.output is not None or self.ended:
            return False
        call.output = output
        response = self._responses.get(call.response_id)
        if response is not None:
            self._flush_tool_outputs(response)
        return True

    def update_session(self, **changes: Any) -> None:
        """Change ``instructions``, ``tools``, ``voice``, ``tool_choice``, ``turn_detection``, ... (partial
        ``session.update``; a reconnect sends the full updated config)."""
        self.config, partial = apply_changes(self.config, changes)
        if not self.ended:
            self._send({"type": "session.update", "event_id": self._event_id(), "session": partial})

    def truncate(self, item_id: str, played_ms: int) -> None:
        """What the listener heard of assistant item ``item_id`` after a barge-in (see module docstring)."""
        item = self.conversation.get(self.resolve_item_id(item_id))
        if item is None or item.role != "assistant" or item.truncate_handled or self.ended:
            return
        item.truncate_handled = True
        received = item.audio_ms
        played = max(0, int(played_ms))
        if played >= received and (item.audio_done or not item.audio_on_server):
            return  # heard completely: the server's audio and ours are the same
        end = min(played, received)
        heard_text = cut_text(item.text, end / received if received else 0.0)
        item.text, item.text_frozen = heard_text, True
        self._emit(Transcript("assistant", item_id, heard_text, True))
        if not item.audio_on_server:
            self._rewrite_replayed(item)
        elif end == 0:
            self.conversation.remove(item.id)
            self._send({"type": "conversation.item.delete", "event_id": self._event_id(), "item_id": item.id})
        else:
            event = {"type": "conversation.item.truncate", "event_id": self._event_id()}
            self._send(event | {"item_id": item.id, "content_index": 0, "audio_end_ms": end})

    def _rewrite_replayed(self, item: Item) -> None:
        """A replayed (text-only) assistant item was cut short: replace it with the heard text."""
        previous = self.conversation.previous_of(item.id)
        old_id = item.id
        self._send({"type": "conversation.item.delete", "event_id": self._event_id(), "item_id": old_id})
        payload = item.replay_payload()
        if payload is None:
            self.conversation.remove(old_id)
            return
        new_id = self._item_id()
        payload["id"] = new_id
        event = {"type": "conversation.item.create", "event_id": self._event_id()}
        self._send(event | {"previous_item_id": previous or "root", "item": payload})
        self._rename(old_id, new_id)

    # internals: sending ---------------------------------------------------------------------------------

    def _event_id(self) -> str:
        self._counter += 1
        return f"evt_vb{self._counter:06d}"

    def _item_id(self) -> str:
        self._counter += 1
        return f"item_vb{self._generation:03d}{self._counter:011d}"

    def _send(self, event: dict[str, Any]) -> None:
        if self._batch:
            self.flush_input_audio()  # audio the caller spoke before this event goes first
        if self._connected:
            self._out.append(json.dumps(event, separators=(",", ":")))

    def _emit(self, event: ModelEvent) -> None:
        self._events.append(event)

    def _session(self) -> dict[str, Any]:
        return session_payload(self.config)

    def _enqueue(self, params: dict[str, Any]) -> None:
        if params not in self._queue:
            self._queue.append(params)

    def _pump(self) -> None:
        """Send the next queued response.create when nothing is active."""
        if not self._ready or self.response_active or not self._queue or self.ended:
            return
        params = self._queue.pop(0)
        event_id = self._event_id()
        event: dict[str, Any] = {"type": "response.create", "event_id": event_id}
        if params:
            event["response"] = params
        self._send(event)
        self._inflight.append((event_id, params))

    def _flush_tool_outputs(self, response: _Response) -> None:
        if response.outputs_sent or not response.done or not response.calls:
            return
        calls = [self._calls[c] for c in response.calls]
        if any(c.output is None for c in calls):
            return
        response.outputs_sent = True
        for call in calls:
            assert call.output is not None
            item = Item(
                id=self._item_id(), type="function_call_output", call_id=call.call_id, output=call.output
            )
            self.conversation.append(item)
            payload = {"id": item.id, "type": "function_call_output", "call_id": call.call_id}
            payload["output"] = call.output
            self._send({"type": "conversation.item.create", "event_id": self._event_id(), "item": payload})
        if response.status in ("completed", "lost"):
            self._enqueue({})
        self._pump()

    # input ----------------------------------------------------------------------------------------------

    def receive_message(self, text: str | bytes) -> None:
        """One text frame from the server. Raises ``ProtocolError`` for frames that are not JSON events."""
        try:
            event = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"Realtime frame is not JSON: {exc}") from exc
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ProtocolError("Realtime frame is not an event object with a string 'type'")
        if self.ended:
            return
        handler = self._handlers.get(event["type"])
        if handler is not None:
            handler(event)

    def _on_session_created(self, event: dict[str, Any]) -> None:
        session = event.get("session")
        if isinstance(session, dict):
            expires = session.get("expires_at")
            self.expires_at = expires if isinstance(expires, int) else self.expires_at
            self.session_id = _s(session, "id") or self.session_id

    def _on_session_updated(self, event: dict[str, Any]) -> None:
        if self._connected and not self._ready:
            self._become_ready()

    def _become_ready(self) -> None:
        self._ready = True
        pending, self._pending_audio = self._pending_audio, deque()
        self._pending_samples = 0
        for data, _ in pending:
            self._send_audio(data)
        self._pump()

    def _on_error(self, event: dict[str, Any]) -> None:
        error = model_error_from_event(event)
        self._emit(error)
        body = event.get("error")
        body = body if isinstance(body, dict) else {}
        ref = _s(body, "event_id")
        param = _s(body, "param") or ""
        if error.kind is ErrorKind.FATAL:
            self.ended = True
            self._out.clear()
            self._emit(SessionEnded(f"fatal upstream error: {error.code or error.message}", error))
            return
        if self._inflight:
            ids = [event_id for event_id, _ in self._inflight]
            if ref in ids:
                del self._inflight[ids.index(ref)]
            elif error.code == "conversation_already_has_active_response" or param.startswith("response"):
                self._inflight.popleft()  # refused; a running response already sees our items
        if (
            not self._ready
            and self._connected
            and (ref == self._update_event_id or param.startswith("session"))
        ):
            self._become_ready()  # the update was refused; go on with what the server has
        self._pump()

    def _on_speech_started(self, event: dict[str, Any]) -> None:
        self._user_speaking = True
        self._emit(SpeechStarted(_s(event, "item_id")))
        if not self.config.interrupts:
            return
        if self._active is not None:
            self._muted.add(self._active)
        playing = self._last_audio_item  # the id the call knows (AudioOut carried it)
        item = self.conversation.get(self.resolve_item_id(playing)) if playing else None
        self._emit(ClearAudio(playing if item is not None and not item.truncate_handled else None))

    def _on_speech_stopped(self, event: dict[str, Any]) -> None:
        self._user_speaking = False
        self._emit(SpeechStopped(_s(event, "item_id")))

    def _on_committed(self, event: dict[str, Any]) -> None:
        self._user_speaking = False
        item_id = _s(event, "item_id")
        if item_id and self.config.transcription_model:
            self._awaiting_transcript.add(item_id)

    def _on_item_added(self, event: dict[str, Any]) -> None:
        data = event.get("item")
        if not isinstance(data, dict):
            return
        item = item_from_wire(data)
        if item is None:
            return
        if "previous_item_id" in event:
            self.conversation.place(item, event["previous_item_id"])
        else:
            self.conversation.place(item)

    def _on_item_done(self, event: dict[str, Any]) -> None:
        self._on_item_added(event)

    def _on_item_deleted(self, event: dict[str, Any]) -> None:
        item_id = _s(event, "item_id")
        if item_id:
            self.conversation.remove(item_id)

    def _on_user_transcript(self, event: dict[str, Any]) -> None:
        item_id = _s(event, "item_id")
        transcript = _s(event, "transcript")
        if not item_id or transcript is None:
            return
        self._awaiting_transcript.discard(item_id)
        item = self.conversation.get(item_id)
        if item is None:
            item = self.conversation.append(Item(id=item_id, type="message", role="user"))
        item.text = transcript
        self._emit(Transcript("user", item_id, transcript, True))

    def _on_user_transcript_failed(self, event: dict[str, Any]) -> None:
        self._awaiting_transcript.discard(_s(event, "item_id") or "")

    def _on_response_created(self, event: dict[str, Any]) -> None:
        data = event.get("response")
        response_id = _s(data, "id") if isinstance(data, dict) else None
        if not response_id:
            return
        if self._inflight:
            self._inflight.popleft()
        self._active = response_id
        self._responses[response_id] = _Response(response_id)
        self._emit(ResponseStarted(response_id))

    def _on_response_done(self, event: dict[str, Any]) -> None:
        data = event.get("response")
        if not isinstance(data, dict):
            return
        response_id = _s(data, "id") or ""
        status = _s(data, "status") or "completed"
        details = data.get("status_details")
        reason = _s(details, "reason") if isinstance(details, dict) else None
        response = self._responses.setdefault(response_id, _Response(response_id))
        for out in data.get("output") or []:
            if (
                isinstance(out, dict)
                and out.get("type") == "function_call"
                and out.get("status") == "completed"
            ):
                self._finish_call(_s(out, "call_id"), _s(out, "name"), _s(out, "arguments"), response_id)
        response.done, response.status = True, status
        if self._active == response_id:
            self._active = None
        self._muted.discard(response_id)
        self._emit(ResponseDone(response_id, status, reason))
        self._flush_tool_outputs(response)
        self._forget_old_responses()
        self._pump()

    def _forget_old_responses(self) -> None:
        finished = [r for r in self._responses.values() if r.done and (r.outputs_sent or not r.calls)]
        for response in finished[:-8]:
            del self._responses[response.id]
            for call_id in response.calls:
                self._calls.pop(call_id, None)

    def _on_output_item_added(self, event: dict[str, Any]) -> None:
        data = event.get("item")
        response_id = _s(event, "response_id") or ""
        if not isinstance(data, dict):
            return
        item = item_from_wire(data)
        if item is None:
            return
        item.response_id = response_id
        item.audio_rate = self.config.output_rate
        known = self.conversation.place(item)
        known.response_id = response_id
        if response_id in self._responses:
            self._responses[response_id].had_output = True
        call_id, name = _s(data, "call_id"), _s(data, "name")
        if item.type == "function_call" and call_id and call_id not in self._calls:
            self._calls[call_id] = _Call(call_id, name or "", item.id, response_id)

    def _on_output_item_done(self, event: dict[str, Any]) -> None:
        data = event.get("item")
        if not isinstance(data, dict):
            return
        self._on_item_added({"item": data})
        if data.get("type") == "function_call" and data.get("status") == "completed":
            response_id = _s(event, "response_id") or ""
            self._finish_call(_s(data, "call_id"), _s(data, "name"), _s(data, "arguments"), response_id)

    def _assistant_item(self, event: dict[str, Any]) -> Item | None:
        item_id = _s(event, "item_id")
        if not item_id:
            return None
        item = self.conversation.get(item_id)
        if item is None:  # a delta before its item: keep going with what we have
            response_id = _s(event, "response_id")
            new = Item(id=item_id, type="message", role="assistant", response_id=response_id)
            new.audio_rate = self.config.output_rate
            item = self.conversation.append(new)
        return item

    def _on_audio_delta(self, event: dict[str, Any]) -> None:
        item = self._assistant_item(event)
        delta = _s(event, "delta")
        if item is None or delta is None:
            return
        data = self._residual.pop(item.id, b"") + b64decode(delta)
        width = bytes_per_sample(self.config.output_format)
        if len(data) % width:
            self._residual[item.id] = data[-(len(data) % width) :]
            data = data[: len(data) - len(data) % width]
        item.audio_samples += len(data) // width
        item.audio_on_server = True
        if not data or (_s(event, "response_id") or item.response_id) in self._muted or item.truncate_handled:
            return
        self._last_audio_item = item.id
        self._emit(AudioOut(item.id, decode_audio(data, self.config.output_format)))

    def _on_audio_done(self, event: dict[str, Any]) -> None:
        item = self._assistant_item(event)
        if item is not None:
            item.audio_done = True
            self._residual.pop(item.id, None)

    def _on_assistant_delta(self, event: dict[str, Any]) -> None:
        item = self._assistant_item(event)
        delta = _s(event, "delta")
        if item is None or not delta or item.text_frozen:
            return
        item.text += delta
        if (_s(event, "response_id") or item.response_id) not in self._muted:
            self._emit(Transcript("assistant", item.id, delta, False))

    def _on_assistant_done(self, event: dict[str, Any]) -> None:
        item = self._assistant_item(event)
        text = _s(event, "transcript")
        text = text if text is not None else _s(event, "text")
        if item is None or text is None or item.text_frozen:
            return
        item.text = text
        if (_s(event, "response_id") or item.response_id) not in self._muted:
            self._emit(Transcript("assistant", item.id, text, True))

    def _on_arguments_done(self, event: dict[str, Any]) -> None:
        self._finish_call(
            _s(event, "call_id"), _s(event, "name"), _s(event, "arguments"), _s(event, "response_id") or ""
        )

    def _finish_call(
        self, call_id: str | None, name: str | None, arguments: str | None, response_id: str
    ) -> None:
        """A call's arguments are complete: record it and emit ``ToolCall`` (once per call)."""
        if not call_id or arguments is None:
            return
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = _Call(call_id, name or "", "", response_id)
        if call.emitted:
            return
        call.emitted = True
        call.name = name or call.name
        call.arguments = arguments
        item = self.conversation.get(call.item_id) if call.item_id else None
        if item is not None:
            item.arguments, item.name, item.call_id = arguments, call.name, call_id
        response = self._responses.setdefault(call.response_id, _Response(call.response_id))
        response.calls.append(call_id)
        self._emit(ToolCall(call_id, call.name, arguments, call.item_id, call.response_id))
