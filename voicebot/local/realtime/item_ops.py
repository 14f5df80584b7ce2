"""Conversation item events of the Realtime emulation: create, retrieve, delete, truncate (pure).

Truncation follows the observed GA behaviour: past the end of the audio sent, an ``error`` ("Audio content
of Xms is already shorter than Yms") and then the truncate applied, clamped to the real length. Truncation
removes the item's transcript.
"""

from __future__ import annotations

import copy
from typing import Any

from voicebot.local.realtime.actions import Action, Transcribe
from voicebot.local.realtime.audio_codec import InputDecoder, bytes_per_ms, decode_b64
from voicebot.local.realtime.ids import IdFactory
from voicebot.local.realtime.items import ROOT, Conversation, StoredItem, validate_item
from voicebot.local.realtime.session_config import ConfigError


class ItemsMixin:
    """Item handlers of ``RealtimeCore`` (shares its state)."""

    ids: IdFactory
    conv: Conversation
    session: dict[str, Any]
    _vad_rate: int

    def _emit(self, type_: str, **fields: Any) -> None: ...
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

    def _input_format(self) -> dict[str, Any]:
        fmt: dict[str, Any] = self.session["audio"]["input"]["format"]
        return fmt

    def _item_not_found(self, item_id: Any, param: str, event_id: str | None) -> None:
        self._error("item_not_found", f"Item with item_id '{item_id}' not found.", param, event_id)

    def _on_conversation_item_create(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        prev = event.get("previous_item_id")
        try:
            if "item" not in event:
                raise ConfigError("missing_required_parameter", "Missing required parameter: 'item'.", "item")
            item = validate_item(event["item"])
            if item.get("id") in self.conv:
                raise ConfigError("invalid_value", f"Item with id '{item['id']}' already exists.", "item.id")
            audio = self._item_audio(item)
        except ConfigError as err:
            self._error(err.code, err.message, err.param, event_id)
            return
        if prev is not None and prev != ROOT and prev not in self.conv:
            self._item_not_found(prev, "previous_item_id", event_id)
            return
        item.setdefault("id", self.ids.item())
        if item["type"] == "function_call":
            item.setdefault("call_id", self.ids.call())
        st = StoredItem(item)
        if audio is not None:
            part = next(p for p in item["content"] if p["type"] == "input_audio")
            st.audio, st.audio_format = bytearray(audio), copy.deepcopy(self._input_format())
            st.heard, st.waiting_stt = part.get("transcript"), part.get("transcript") is None
        self.conv.add(st, prev)
        self._item_event("conversation.item.added", st)
        self._item_event("conversation.item.done", st)
        if st.waiting_stt and st.audio is not None:
            pcm = InputDecoder(self._input_format(), self._vad_rate).decode(bytes(st.audio))
            self._act(Transcribe(st.id, pcm))

    def _item_audio(self, item: dict[str, Any]) -> bytes | None:
        """Decoded audio of a user ``input_audio`` part (its base64 is dropped from the item)."""
        for i, part in enumerate(item.get("content", [])):
            if part.get("type") == "input_audio" and "audio" in part:
                try:
                    raw = decode_b64(part.pop("audio"))
                except ValueError as exc:
                    raise ConfigError(
                        "invalid_value",
                        "Invalid 'audio': the value is not valid base64-encoded audio.",
                        f"item.content[{i}].audio",
                    ) from exc
                return raw
        return None

    def _on_conversation_item_retrieve(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        st = self.conv.get(str(event.get("item_id")))
        if st is None:
            self._item_not_found(event.get("item_id"), "item_id", event_id)
            return
        self._emit("conversation.item.retrieved", item=st.wire(with_audio=True))

    def _on_conversation_item_delete(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or item_id not in self.conv:
            self._item_not_found(item_id, "item_id", event_id)
            return
        self.conv.delete(item_id)
        self._emit("conversation.item.deleted", item_id=item_id)

    def _on_conversation_item_truncate(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        item_id, index, end_ms = (
            event.get("item_id"),
            event.get("content_index", 0),
            event.get("audio_end_ms"),
        )
        st = self.conv.get(item_id) if isinstance(item_id, str) else None
        if st is None:
            self._item_not_found(item_id, "item_id", event_id)
            return
        if isinstance(end_ms, bool) or not isinstance(end_ms, int) or end_ms < 0:
            self._error(
                "invalid_type" if not isinstance(end_ms, int) else "integer_below_min_value",
                "Invalid 'audio_end_ms': expected a non-negative integer.",
                "audio_end_ms",
                event_id,
            )
            return
        content = st.item.get("content", [])
        if (
            st.item.get("role") != "assistant"
            or not isinstance(index, int)
            or not (0 <= index < len(content) and content[index].get("type") == "output_audio")
        ):
            self._error(
                "invalid_value",
                "Only assistant messages with audio content can be truncated; "
                f"item '{item_id}' content_index {index} has no audio.",
                "content_index",
                event_id,
            )
            return
        audio = st.audio if st.audio is not None else bytearray()
        bpm = bytes_per_ms(st.audio_format or self.session["audio"]["output"]["format"])
        have_ms = len(audio) // bpm
        if end_ms > have_ms:
            self._error(
                "invalid_value",
                f"Audio content of {have_ms}ms is already shorter than {end_ms}ms",
                "audio_end_ms",
                event_id,
            )
            end_ms = have_ms
        del audio[end_ms * bpm :]
        content[index]["transcript"] = ""
        self._emit("conversation.item.truncated", item_id=item_id, content_index=index, audio_end_ms=end_ms)
