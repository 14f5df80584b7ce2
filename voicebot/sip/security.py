"""Admission checks for SIP datagrams (pure): source allow-list, scanner User-Agents, per-source token
buckets. Everything refused here is dropped silently (no response), as the reference's §7 asks."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SCANNER_AGENTS = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "vaxsipuseragent",
    "pplsip",
    "sundayddr",
    "iwar",
    "sipsak-scan",
)


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    allowed_sources: tuple[str, ...] | None = None  # IPs or CIDRs; None admits any source
    scanner_agents: tuple[str, ...] = SCANNER_AGENTS  # lower-case substrings of User-Agent
    requests_per_s: float = 20.0
    request_burst: float = 40.0
    invites_per_s: float = 5.0
    invite_burst: float = 10.0
    max_tracked_sources: int = 10000


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class SecurityPolicy:
    def __init__(self, config: SecurityConfig | None = None) -> None:
        self.config = config or SecurityConfig()
        nets = self.config.allowed_sources
        self._nets = None if nets is None else [ipaddress.ip_network(n, strict=False) for n in nets]
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def source_allowed(self, ip: str) -> bool:
        if self._nets is None:
            return True
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        return any(addr in net for net in self._nets)

    def is_scanner(self, user_agent: str | None) -> bool:
        if not user_agent:
            return False
        ua = user_agent.lower()
        return any(s in ua for s in self.config.scanner_agents)

    def rate_ok(self, ip: str, method: str, now: float) -> bool:
        """One token from the source's request bucket, and from its INVITE bucket for INVITEs."""
        cfg = self.config
        if not self._take((ip, "*"), cfg.requests_per_s, cfg.request_burst, now):
            return False
        return method != "INVITE" or self._take((ip, "INVITE"), cfg.invites_per_s, cfg.invite_burst, now)

    def _take(self, key: tuple[str, str], rate: float, burst: float, now: float) -> bool:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            if len(self._buckets) >= self.config.max_tracked_sources:
                del self._buckets[next(iter(self._buckets))]  # evict the least recently used source
            bucket = TokenBucket(rate, burst, now)
        self._buckets[key] = bucket  # re-insert: dict order is recency order
        return bucket.take(now)
