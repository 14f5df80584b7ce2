"""Fault injection for the local engine's Realtime endpoint (tests, failover drills, load tests).

A ``RealtimeFaults`` object on the engine app (``keys.FAULTS``) tells the route to misbehave the way real
upstreams do: refuse new connections with an HTTP error, drop the socket in the middle of a response, or answer
with a quota error. Each fault is a budget that counts down, so a test can break the upstream once and watch the
client recover.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RealtimeFaults:
    # Refuse the next N WebSocket upgrades with this HTTP status (503 "upstream unavailable" by default).
    refuse_connections: int = 0
    refuse_status: int = 503
    # Abort the next N sockets after this many ``response.output_audio.delta`` frames have been sent on them.
    drop_after_audio_deltas: int | None = None
    drops: int = 0
    # Answer the next N ``response.created`` with an ``insufficient_quota`` error and close the socket.
    quota_errors: int = 0

    def take_refusal(self) -> int | None:
        if self.refuse_connections <= 0:
            return None
        self.refuse_connections -= 1
        return self.refuse_status

    def take_drop(self) -> int | None:
        """The audio-delta count at which to drop a new connection, or None."""
        if self.drops <= 0 or self.drop_after_audio_deltas is None:
            return None
        self.drops -= 1
        return self.drop_after_audio_deltas

    def take_quota_error(self) -> bool:
        if self.quota_errors <= 0:
            return False
        self.quota_errors -= 1
        return True


# --- HTTP endpoint faults (added for voicebot/fallback's retry tests; applied by http_errors.engine_middleware) ---


@dataclass(slots=True)
class HttpFault:
    """Answer the next ``times`` requests whose path ends with ``path`` with this error (OpenAI's body)."""

    path: str  # e.g. "/responses", "/audio/speech", "/audio/transcriptions"
    status: int
    times: int = 1
    retry_after: str | None = None  # value of the Retry-After header, e.g. "0.4"
    code: str | None = None
    type: str | None = None  # default: invalid_request_error below 500, server_error from 500
    message: str = "Injected fault."


@dataclass(slots=True)
class HttpFaults:
    """Scripted HTTP errors for the engine's JSON/SSE/audio routes, and a count of requests per path."""

    pending: list[HttpFault] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    def add(self, fault: HttpFault) -> None:
        self.pending.append(fault)

    def take(self, path: str) -> HttpFault | None:
        """Count a request to ``path``; the fault to answer it with, if one is due."""
        self.seen[path] = self.seen.get(path, 0) + 1
        for fault in self.pending:
            if path.endswith(fault.path) and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.pending.remove(fault)
                return fault
        return None

    def count(self, suffix: str) -> int:
        return sum(n for path, n in self.seen.items() if path.endswith(suffix))
