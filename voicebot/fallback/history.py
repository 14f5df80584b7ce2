"""The cascade's conversation history (pure).

The Responses API is stateless here (``store: false``): every request carries the whole conversation as input
items. ``History`` keeps those items in order (user and assistant messages, function calls and their outputs)
and knows, for each spoken assistant message, which text went into which stretch of audio, so that a
barge-in can cut the message to what the caller actually heard (``heard_text``).

It also converts to and from the Realtime client's ``Conversation`` items, which is how a failover carries
the conversation from a Realtime session to the cascade and back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from voicebot.realtime.conversation import Item, cut_text

Kind = Literal["message", "function_call", "function_call_output"]


@dataclass(slots=True)
class Spoken:
    """A piece of an assistant message and the audio made for it (``audio_ms`` grows while it streams)."""

    text: str
    audio_ms: float = 0.0


@dataclass(slots=True)
class HistoryItem:
    id: str
    kind: Kind
    role: str | None = None  # messages: user | assistant | system
    text: str = ""
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    spoken: list[Spoken] = field(default_factory=list)
    truncated: bool = False
    aside: bool = False  # a filler said while an answer was pending: kept, but not sent to the model

    def to_input(self) -> dict[str, Any] | None:
        """The item as a Responses input item (None: nothing to send)."""
        if self.kind == "message":
            if not self.text.strip() or self.role not in ("user", "assistant", "system", "developer"):
                return None
            return {"type": "message", "role": self.role, "content": self.text}
        if self.kind == "function_call":
            return {
                "type": "function_call",
                "call_id": self.call_id,
                "name": self.name,
                "arguments": self.arguments or "{}",
            }
        return {"type": "function_call_output", "call_id": self.call_id, "output": self.output or ""}


class History:
    """Items in conversation order."""

    def __init__(self) -> None:
        self._items: list[HistoryItem] = []
        self._version = 0

    def __iter__(self) -> Iterator[HistoryItem]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    @property
    def version(self) -> int:
        """Counts changes (items added, removed or cut): cheap change detection for switch-backs."""
        return self._version

    def touch(self) -> None:
        """Record an in-place change of an item (its text was cut, for example)."""
        self._version += 1

    def get(self, item_id: str) -> HistoryItem | None:
        return next((i for i in self._items if i.id == item_id), None)

    def add(self, item: HistoryItem) -> HistoryItem:
        self._items.append(item)
        self._version += 1
        return item

    def add_message(self, item_id: str, role: str, text: str = "") -> HistoryItem:
        return self.add(HistoryItem(item_id, "message", role=role, text=text))

    def add_call(self, item_id: str, call_id: str, name: str, arguments: str) -> HistoryItem:
        return self.add(
            HistoryItem(item_id, "function_call", call_id=call_id, name=name, arguments=arguments)
        )

    def add_output(self, item_id: str, call_id: str, output: str) -> HistoryItem:
        """The output of a call, placed right after its call (and the outputs already there), so a user turn
        that came in while the tool ran does not split the call from its output."""
        item = HistoryItem(item_id, "function_call_output", call_id=call_id, output=output)
        index = next(
            (n for n, i in enumerate(self._items) if i.kind == "function_call" and i.call_id == call_id), None
        )
        if index is None:
            return self.add(item)
        index += 1
        while index < len(self._items) and self._items[index].kind in (
            "function_call",
            "function_call_output",
        ):
            index += 1
        self._items.insert(index, item)
        self._version += 1
        return item

    def remove(self, item_id: str) -> None:
        self._items = [i for i in self._items if i.id != item_id]
        self._version += 1

    def has_output(self, call_id: str) -> bool:
        return any(i.kind == "function_call_output" and i.call_id == call_id for i in self._items)

    def open_calls(self) -> list[str]:
        """Call ids of function calls that have no output yet, in order."""
        answered = {i.call_id for i in self._items if i.kind == "function_call_output"}
        return [
            i.call_id
            for i in self._items
            if i.kind == "function_call" and i.call_id is not None and i.call_id not in answered
        ]

    def to_input(self) -> list[dict[str, Any]]:
        """The Responses ``input``: every message with text, and every function call that has its output
        together with that output (an unmatched call or output would make the request fail)."""
        calls = {i.call_id for i in self._items if i.kind == "function_call"}
        outputs = {i.call_id for i in self._items if i.kind == "function_call_output"}
        paired = calls & outputs
        out: list[dict[str, Any]] = []
        for item in self._items:
            if item.aside or (item.kind != "message" and item.call_id not in paired):
                continue
            wire = item.to_input()
            if wire is not None:
                out.append(wire)
        return out

    def awaiting_answer(self) -> bool:
        """True when the conversation ends with something the assistant has not answered yet: a user message,
        or tool outputs (a follow-up is due)."""
        for item in reversed(self._items):
            if item.aside or (item.kind == "message" and not item.text.strip()):
                continue
            if item.kind == "message":
                return item.role == "user"
            return item.kind == "function_call_output"
        return False

    # conversion to and from the Realtime client's conversation -------------------------------------------

    @classmethod
    def from_conversation(cls, items: Iterable[Item], outputs: dict[str, str] | None = None) -> History:
        """A history from Realtime conversation items (text messages, calls, outputs). ``outputs`` adds tool
        outputs the Realtime session had not yet turned into items (call id → output)."""
        history = cls()
        seen_outputs: set[str] = set()
        for item in items:
            if item.type == "message" and item.role in ("user", "assistant", "system") and item.text.strip():
                history.add_message(item.id, item.role, item.text)
            elif item.type == "function_call" and item.call_id and item.name and item.arguments is not None:
                history.add_call(item.id, item.call_id, item.name, item.arguments)
            elif item.type == "function_call_output" and item.call_id and item.output is not None:
                history.add_output(item.id, item.call_id, item.output)
                seen_outputs.add(item.call_id)
        for call_id, output in (outputs or {}).items():
            if call_id not in seen_outputs and call_id in history.open_calls():
                history.add_output(f"{call_id}_output", call_id, output)
        return history

    def to_conversation(self) -> list[Item]:
        """The history as Realtime conversation items (for seeding a new Realtime session's replay)."""
        out: list[Item] = []
        for item in self._items:
            if item.kind == "message" and item.text.strip() and not item.aside:
                out.append(Item(id=item.id, type="message", role=item.role, text=item.text))
            elif item.kind == "function_call" and item.call_id and item.name:
                out.append(
                    Item(
                        id=item.id,
                        type="function_call",
                        call_id=item.call_id,
                        name=item.name,
                        arguments=item.arguments or "{}",
                    )
                )
            elif item.kind == "function_call_output" and item.call_id:
                out.append(
                    Item(id=item.id, type="function_call_output", call_id=item.call_id, output=item.output)
                )
        return out


def heard_text(spoken: list[Spoken], played_ms: float, *, tolerance_ms: float = 40.0) -> str:
    """What the caller heard of a spoken message after ``played_ms`` of its audio: every piece played to the
    end, then the played fraction of the next piece cut at a word boundary. A piece short by at most
    ``tolerance_ms`` counts as heard (playback works in whole 20 ms frames; a tail may still be queued)."""
    heard: list[str] = []
    left = max(0.0, played_ms)
    for piece in spoken:
        if piece.audio_ms <= 0:
            break
        if left + tolerance_ms >= piece.audio_ms:
            heard.append(piece.text)
            left = max(0.0, left - piece.audio_ms)
            continue
        part = cut_text(piece.text, left / piece.audio_ms)
        if part:
            heard.append(part)
        break
    return " ".join(heard)


def spoken_text(spoken: list[Spoken]) -> str:
    """The text of every piece that got audio."""
    return " ".join(p.text for p in spoken if p.audio_ms > 0)
