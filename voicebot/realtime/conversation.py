"""The client's copy of the Realtime conversation (pure).

The server owns the conversation, but a client that may lose its socket must be able to rebuild it on a new
session. ``Conversation`` keeps the items in server order (placed by ``previous_item_id``) with what a replay
needs: user transcripts, assistant transcripts (cut to what was heard after a truncate), function calls and
their outputs, and for assistant audio the samples received so far.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_MISSING: Any = object()


@dataclass(slots=True)
class Item:
    id: str
    type: str  # message | function_call | function_call_output | anything else the server adds
    role: str | None = None  # user | assistant | system (messages only)
    text: str = ""  # input_text, user transcript, assistant transcript or output_text
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None  # set once the arguments are complete
    output: str | None = None
    response_id: str | None = None
    audio_samples: int = 0  # assistant audio received on this connection, in samples at audio_rate
    audio_rate: int = 24_000
    audio_done: bool = False  # response.output_audio.done arrived
    audio_on_server: bool = False  # the server holds audio for this item (not a replayed text copy)
    text_frozen: bool = False  # a truncate fixed the text; later transcript events do not change it
    truncate_handled: bool = False  # truncate() ran for this item (at most once)

    @property
    def audio_ms(self) -> int:
        """Whole milliseconds of audio received (floor)."""
        return self.audio_samples * 1000 // self.audio_rate

    def replay_payload(self) -> dict[str, Any] | None:
        """The item as a ``conversation.item.create`` payload for a fresh session, or None to skip it."""
        if self.type == "message" and self.text:
            if self.role == "assistant":
                content = [{"type": "output_text", "text": self.text}]
            elif self.role in ("user", "system"):
                content = [{"type": "input_text", "text": self.text}]
            else:
                return None
            return {"type": "message", "role": self.role, "content": content}
        if self.type == "function_call" and self.arguments is not None and self.call_id and self.name:
            return {
                "type": "function_call",
                "call_id": self.call_id,
                "name": self.name,
                "arguments": self.arguments,
            }
        if self.type == "function_call_output" and self.call_id and self.output is not None:
            return {"type": "function_call_output", "call_id": self.call_id, "output": self.output}
        return None


def text_of(content: object) -> str | None:
    """The text carried by an item's ``content`` list (input_text, transcripts, output_text)."""
    if not isinstance(content, list):
        return None
    parts: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        for key in ("text", "transcript"):
            value = part.get(key)
            if isinstance(value, str) and value:
                parts.append(value)
                break
    return "".join(parts) if parts else None


def item_from_wire(data: dict[str, Any]) -> Item | None:
    """An ``Item`` from a server item object (None when it has no id)."""
    item_id = data.get("id")
    if not isinstance(item_id, str) or not item_id:
        return None
    kind = data.get("type")
    item = Item(id=item_id, type=kind if isinstance(kind, str) else "unknown")
    role = data.get("role")
    item.role = role if isinstance(role, str) else None
    item.text = text_of(data.get("content")) or ""
    for attr in ("call_id", "name", "output"):
        value = data.get(attr)
        if isinstance(value, str):
            setattr(item, attr, value)
    arguments = data.get("arguments")
    if isinstance(arguments, str) and data.get("status") == "completed":
        item.arguments = arguments
    return item


def cut_text(text: str, fraction: float) -> str:
    """The first ``fraction`` of ``text``, ending at a word boundary (a heard-part approximation)."""
    if fraction >= 1:
        return text
    if fraction <= 0:
        return ""
    keep = int(len(text) * fraction)
    head = text[:keep]
    if keep < len(text) and not text[keep].isspace() and " " in head:
        head = head[: head.rfind(" ")]
    return head.rstrip()


class Conversation:
    """Items in server order."""

    def __init__(self) -> None:
        self._order: list[str] = []
        self._items: dict[str, Item] = {}

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Item]:
        return iter([self._items[i] for i in self._order])

    def get(self, item_id: str) -> Item | None:
        return self._items.get(item_id)

    def ids(self) -> list[str]:
        return list(self._order)

    def place(self, item: Item, previous_item_id: Any = _MISSING) -> Item:
        """Add ``item`` (or merge it into the known one with its id) and position it.

        ``previous_item_id`` None puts it first; an unknown id or no position at all appends a new item and
        leaves a known one where it is.
        """
        known = self._items.get(item.id)
        if known is None:
            self._items[item.id] = item
            self._order.append(item.id)
            known = item
        else:
            _merge(known, item)
        if previous_item_id is None:
            self._move(known.id, 0)
        elif (
            isinstance(previous_item_id, str)
            and previous_item_id in self._items
            and previous_item_id != known.id
        ):
            self._order.remove(known.id)
            self._order.insert(self._order.index(previous_item_id) + 1, known.id)
        return known

    def _move(self, item_id: str, index: int) -> None:
        self._order.remove(item_id)
        self._order.insert(index, item_id)

    def append(self, item: Item) -> Item:
        return self.place(item)

    def remove(self, item_id: str) -> Item | None:
        item = self._items.pop(item_id, None)
        if item is not None:
            self._order.remove(item_id)
        return item

    def rename(self, old: str, new: str) -> None:
        item = self._items.pop(old)
        item.id = new
        self._items[new] = item
        self._order[self._order.index(old)] = new

    def previous_of(self, item_id: str) -> str | None:
        index = self._order.index(item_id)
        return self._order[index - 1] if index > 0 else None


def _merge(known: Item, new: Item) -> None:
    """Fold what the server says about an item into what we know, never clobbering with emptiness."""
    if new.type != "unknown":
        known.type = new.type
    known.role = new.role or known.role
    if new.text and not known.text_frozen:
        known.text = new.text
    known.call_id = new.call_id or known.call_id
    known.name = new.name or known.name
    if new.arguments is not None:
        known.arguments = new.arguments
    if new.output is not None:
        known.output = new.output
