"""Record Realtime WebSocket sessions to JSONL, and replay them deterministically as the upstream.

Format (one JSON object per line, UTF-8; documented in docs/local-engine.md)::

    {"kind": "meta", "version": 1, "path": "/v1/realtime", "query": {"model": "gpt-realtime"}, …}
    {"kind": "frame", "t": 0.0012, "dir": "server", "text": "{\\"type\\":\\"session.created\\",…}"}
    {"kind": "frame", "t": 0.0831, "dir": "client", "text": "{\\"type\\":\\"session.update\\",…}"}
    {"kind": "close", "t": 4.2, "dir": "server", "code": 1000, "reason": ""}

``t`` is monotonic seconds since the connection opened; ``dir`` is who sent the frame. Replay
(``Replayer``) sends the recorded server frames in order, pacing them by the client: the server frames
recorded before the first client frame go out at once, and those recorded after the n-th client frame go out
when the replaying client has sent its n-th frame. The client's frames are not compared with the recording
(``mismatches`` counts the ones whose ``type`` differs), so a replay never depends on timing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

log = logging.getLogger("voicebot.local.record")

FORMAT_VERSION = 1
Direction = Literal["client", "server"]


class Recorder:
    """Appends one session's frames to a JSONL file (flushed per line, so a crash keeps what came before)."""

    def __init__(self, path: str | Path, *, started: float, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._started = started
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._write({"kind": "meta", "version": FORMAT_VERSION, **(meta or {})})

    def _write(self, obj: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def frame(self, direction: Direction, text: str, now: float) -> None:
        self._write({"kind": "frame", "t": round(now - self._started, 6), "dir": direction, "text": text})

    def close_frame(self, direction: Direction, code: int, reason: str, now: float) -> None:
        self._write(
            {
                "kind": "close",
                "t": round(now - self._started, 6),
                "dir": direction,
                "code": code,
                "reason": reason,
            }
        )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True, slots=True)
class Entry:
    kind: Literal["frame", "close"]
    t: float
    dir: Direction
    text: str = ""
    code: int = 1000
    reason: str = ""


@dataclass(slots=True)
class Recording:
    meta: dict[str, Any]
    entries: list[Entry]

    @classmethod
    def parse(cls, text: str) -> Recording:
        meta: dict[str, Any] = {}
        entries: list[Entry] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                kind = obj["kind"]
                if kind == "meta":
                    meta = obj
                    continue
                if kind not in ("frame", "close") or obj["dir"] not in ("client", "server"):
                    raise ValueError(f"unknown kind/dir {kind!r}/{obj.get('dir')!r}")
                entries.append(
                    Entry(
                        kind,
                        float(obj["t"]),
                        obj["dir"],
                        str(obj.get("text", "")),
                        int(obj.get("code", 1000)),
                        str(obj.get("reason", "")),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"recording line {n}: {exc}") from exc
        if meta.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise ValueError(f"unsupported recording version {meta.get('version')!r}")
        return cls(meta, entries)

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        return cls.parse(Path(path).read_text("utf-8"))

    def server_frames(self) -> list[str]:
        return [e.text for e in self.entries if e.kind == "frame" and e.dir == "server"]

    def client_frames(self) -> list[str]:
        return [e.text for e in self.entries if e.kind == "frame" and e.dir == "client"]


@dataclass(slots=True)
class Replayer:
    """Pure replay logic: which recorded server output is due after each client frame."""

    recording: Recording
    _pos: int = 0
    _client_seen: int = 0
    mismatches: int = 0
    _expected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._expected = self.recording.client_frames()

    def start(self) -> list[Entry]:
        """Server entries (frames or a close) recorded before the first client frame."""
        return self._until_next_client()

    def on_client_frame(self, text: str) -> list[Entry]:
        """The server entries recorded between this client frame and the next one."""
        if self._client_seen < len(self._expected) and _type_of(text) != _type_of(
            self._expected[self._client_seen]
        ):
            self.mismatches += 1
            log.warning("replay: client frame %d differs in type from the recording", self._client_seen)
        self._client_seen += 1
        # Skip past the client frame we just matched.
        while self._pos < len(self.recording.entries):
            e = self.recording.entries[self._pos]
            if e.dir == "client":
                self._pos += 1
                if e.kind == "frame":
                    break
            else:
                break
        return self._until_next_client()

    def _until_next_client(self) -> list[Entry]:
        out: list[Entry] = []
        entries = self.recording.entries
        while self._pos < len(entries) and entries[self._pos].dir == "server":
            out.append(entries[self._pos])
            self._pos += 1
        return out

    @property
    def finished(self) -> bool:
        return self._pos >= len(self.recording.entries)


def _type_of(text: str) -> str | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj.get("type") if isinstance(obj, dict) and isinstance(obj.get("type"), str) else None
