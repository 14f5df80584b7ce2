"""Playback accounting for assistant audio (pure).

An audio port tells the ledger what it queued and what it actually sent to the listener, per assistant item.
On barge-in the port drops its queue (``drop_queued``) and the call asks ``played_ms(item_id)``: the whole
milliseconds of that item the listener really heard, which is what ``conversation.item.truncate`` needs.
Counts are exact: integer ticks of 1/14,112,000 s, a rate every common sample rate divides (8, 11.025, 16,
22.05, 24, 32, 44.1, 48 and 96 kHz), so the 20 ms audio loop does plain integer sums; any other rate falls
back to an exact fraction of a tick. Mixing sample rates never rounds.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction

TICKS_PER_S = 14_112_000  # the least common multiple of the usual sample rates
_TICKS_PER_MS = TICKS_PER_S // 1000

Ticks = int | Fraction


@dataclass(slots=True)
class _ItemTally:
    queued: Ticks = 0  # handed to the port and not yet played or dropped
    played: Ticks = 0  # actually sent out


def _ms(ticks: Ticks) -> int:
    """Whole milliseconds, rounded down."""
    return int(ticks // _TICKS_PER_MS)


class PlayoutLedger:
    """Per-item queued and played audio, remembering the last ``max_items`` items."""

    def __init__(self, max_items: int = 64) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._max_items = max_items
        self._items: OrderedDict[str, _ItemTally] = OrderedDict()

    def _tally(self, item_id: str) -> _ItemTally:
        tally = self._items.get(item_id)
        if tally is None:
            tally = self._items[item_id] = _ItemTally()
            while len(self._items) > self._max_items:
                self._items.popitem(last=False)
        return tally

    @staticmethod
    def _ticks(samples: int, rate: int) -> Ticks:
        if samples < 0:
            raise ValueError(f"sample count must not be negative, got {samples}")
        if rate <= 0:
            raise ValueError(f"sample rate must be positive, got {rate}")
        per_sample, rest = divmod(TICKS_PER_S, rate)
        return samples * per_sample if rest == 0 else Fraction(samples * TICKS_PER_S, rate)

    def queued(self, item_id: str, samples: int, rate: int) -> None:
        """``samples`` of ``item_id`` at ``rate`` Hz entered the port's output queue."""
        self._tally(item_id).queued += self._ticks(samples, rate)

    def played(self, item_id: str, samples: int, rate: int) -> None:
        """``samples`` of ``item_id`` at ``rate`` Hz went out to the listener (moves them off the queue)."""
        amount = self._ticks(samples, rate)
        tally = self._tally(item_id)
        tally.played += amount
        tally.queued = max(0, tally.queued - amount)

    def drop_queued(self) -> dict[str, int]:
        """Barge-in: forget everything still queued. Returns the dropped whole ms per item (non-zero only)."""
        dropped: dict[str, int] = {}
        for item_id, tally in self._items.items():
            if tally.queued:
                dropped[item_id] = _ms(tally.queued)
                tally.queued = 0
        return dropped

    def played_ms(self, item_id: str) -> int:
        """Whole milliseconds of ``item_id`` that were played (0 for an unknown item); never overstates."""
        tally = self._items.get(item_id)
        return _ms(tally.played) if tally else 0

    def queued_ms(self, item_id: str | None = None) -> int:
        """Whole milliseconds still queued for ``item_id`` (or for all items when None)."""
        if item_id is not None:
            tally = self._items.get(item_id)
            return _ms(tally.queued) if tally else 0
        total: Ticks = sum((t.queued for t in self._items.values()), 0)
        return _ms(total)

    def forget(self, item_id: str) -> None:
        self._items.pop(item_id, None)
