"""Conversation items of the Realtime emulation: validation, storage, and the brain's view (pure).

Items are kept in their wire shape (``object: "realtime.item"``), without audio bytes; the audio of a user
``input_audio`` part (input format) or of an assistant ``output_audio`` part (output format) is stored beside
the item and only shown by ``conversation.item.retrieve``.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import dataclass, field
from typing import Any

from voicebot.local.brain import Turn
from voicebot.local.realtime.session_config import ConfigError, invalid_value

ROOT = "root"
_CONTENT_TYPES = {
    "user": ("input_text", "input_audio", "input_image"),
    "assistant": ("output_text", "output_audio"),
    "system": ("input_text",),
}


@dataclass(slots=True)
class StoredItem:
    item: dict[str, Any]
    audio: bytearray | None = None  # wire bytes in ``audio_format``
    audio_format: dict[str, Any] | None = None
    heard: str | None = None  # what STT heard in a user audio item (the brain's input)
    waiting_stt: bool = False
    response_id: str | None = None  # the response that made an assistant item
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.item["id"])

    def wire(self, with_audio: bool = False) -> dict[str, Any]:
        """The item as sent in events; ``with_audio`` adds base64 audio (``conversation.item.retrieved``)."""
        out = copy.deepcopy(self.item)
        if with_audio and self.audio is not None:
            for part in out.get("content", []):
                if part.get("type") in ("input_audio", "output_audio"):
                    part["audio"] = base64.b64encode(bytes(self.audio)).decode("ascii")
                    break
        return out


class Conversation:
    """The default conversation: items in order."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.items: dict[str, StoredItem] = {}

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def get(self, item_id: str) -> StoredItem | None:
        return self.items.get(item_id)

    def last_id(self) -> str | None:
        return self.order[-1] if self.order else None

    def previous_of(self, item_id: str) -> str | None:
        i = self.order.index(item_id)
        return self.order[i - 1] if i > 0 else None

    def add(self, stored: StoredItem, previous_item_id: str | None = None) -> str | None:
        """Insert after ``previous_item_id`` (``"root"``: first; None: last); returns the previous id."""
        if previous_item_id is None:
            self.order.append(stored.id)
        elif previous_item_id == ROOT:
            self.order.insert(0, stored.id)
        else:
            self.order.insert(self.order.index(previous_item_id) + 1, stored.id)
        self.items[stored.id] = stored
        return self.previous_of(stored.id)

    def delete(self, item_id: str) -> None:
        self.order.remove(item_id)
        del self.items[item_id]

    def stored(self, ids: list[str] | None = None) -> list[StoredItem]:
        return [self.items[i] for i in (self.order if ids is None else ids) if i in self.items]


def _require(obj: dict[str, Any], key: str, param: str) -> Any:
    if key not in obj:
        raise ConfigError(
            "missing_required_parameter", f"Missing required parameter: '{param}.{key}'.", f"{param}.{key}"
        )
    return obj[key]


def _expect_str(value: Any, param: str, nullable: bool = False) -> None:
    if not (isinstance(value, str) or (nullable and value is None)):
        raise ConfigError("invalid_type", f"Invalid type for '{param}': expected a string.", param)


def validate_item(item: Any, param: str = "item") -> dict[str, Any]:
    """A client-created item, checked and normalised (``object``, ``status``); raises ``ConfigError``."""
    if not isinstance(item, dict):
        raise ConfigError("invalid_type", f"Invalid type for '{param}': expected an object.", param)
    kind = _require(item, "type", param)
    if kind not in ("message", "function_call", "function_call_output"):
        raise invalid_value(f"{param}.type", kind, ("message", "function_call", "function_call_output"))
    if "id" in item:
        _expect_str(item["id"], f"{param}.id")
    out = copy.deepcopy(item)
    out["object"] = "realtime.item"
    out.setdefault("status", "completed")
    if kind == "message":
        _validate_message(out, param)
    elif kind == "function_call":
        _expect_str(_require(out, "name", param), f"{param}.name")
        _expect_str(out.setdefault("arguments", ""), f"{param}.arguments")
        if "call_id" in out:
            _expect_str(out["call_id"], f"{param}.call_id")
    else:
        _expect_str(_require(out, "call_id", param), f"{param}.call_id")
        _expect_str(_require(out, "output", param), f"{param}.output")
    return out


def _validate_message(item: dict[str, Any], param: str) -> None:
    role = _require(item, "role", param)
    if role not in _CONTENT_TYPES:
        raise invalid_value(f"{param}.role", role, tuple(_CONTENT_TYPES))
    content = _require(item, "content", param)
    if not isinstance(content, list):
        raise ConfigError(
            "invalid_type", f"Invalid type for '{param}.content': expected an array.", f"{param}.content"
        )
    allowed = _CONTENT_TYPES[role]
    for i, part in enumerate(content):
        p = f"{param}.content[{i}]"
        if not isinstance(part, dict):
            raise ConfigError("invalid_type", f"Invalid type for '{p}': expected an object.", p)
        ptype = _require(part, "type", p)
        if ptype not in allowed:
            raise invalid_value(f"{p}.type", ptype, allowed)
        if ptype in ("input_text", "output_text"):
            _expect_str(_require(part, "text", p), f"{p}.text")
        elif ptype == "input_audio":
            if "audio" in part:
                _expect_str(part["audio"], f"{p}.audio")
            _expect_str(part.setdefault("transcript", None), f"{p}.transcript", nullable=True)
        elif ptype == "output_audio":
            if "audio" in part:
                raise ConfigError(
                    "invalid_value",
                    "Assistant audio items cannot be created by the client; "
                    "use 'output_text' or a transcript only.",
                    f"{p}.audio",
                )
            _expect_str(part.setdefault("transcript", ""), f"{p}.transcript", nullable=True)
        elif ptype == "input_image":
            _expect_str(_require(part, "image_url", p), f"{p}.image_url")


def to_turns(items: list[StoredItem]) -> list[Turn]:
    """The brain's view of items: text of messages (heard text for user audio), calls and outputs."""
    turns: list[Turn] = []
    for st in items:
        it = st.item
        kind = it.get("type")
        if kind == "function_call":
            turns.append(
                Turn.call(str(it.get("name", "")), str(it.get("arguments", "")), str(it.get("call_id", "")))
            )
        elif kind == "function_call_output":
            turns.append(Turn.output(str(it.get("call_id", "")), str(it.get("output", ""))))
        elif kind == "message":
            texts: list[str] = []
            for part in it.get("content", []):
                ptype = part.get("type")
                if ptype in ("input_text", "output_text"):
                    texts.append(str(part.get("text") or ""))
                elif ptype == "input_audio":
                    texts.append(st.heard if st.heard is not None else str(part.get("transcript") or ""))
                elif ptype == "output_audio":
                    texts.append(str(part.get("transcript") or ""))
            text = " ".join(t for t in texts if t).strip()
            role = it.get("role")
            if role == "user":
                turns.append(Turn.user(text))
            elif role == "assistant":
                turns.append(Turn.assistant(text))
            else:
                turns.append(Turn.system(text))
    return turns
