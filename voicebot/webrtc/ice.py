"""Which local addresses the server offers as ICE host candidates (``Settings.ice_host_addresses``).

aiortc gathers host candidates through ``aioice.ice.get_host_addresses``, which lists every address of every
interface except loopback. That is wrong for a multi-homed server (it offers addresses the browser can never
reach, and probes from all of them) and makes loopback-only tests impossible. ``restrict_host_addresses``
replaces that function for the whole process with one that returns the configured addresses; the app does it
at startup and undoes it at shutdown.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Sequence

import aioice.ice

from voicebot.errors import ConfigError

log = logging.getLogger("voicebot.webrtc")

HostAddresses = Callable[[bool, bool], list[str]]


def restrict_host_addresses(addresses: Sequence[str]) -> Callable[[], None]:
    """Make aioice gather host candidates only on ``addresses``; returns a function that undoes it."""
    parsed: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for a in addresses:
        try:
            parsed.append(ipaddress.ip_address(a))
        except ValueError as exc:
            raise ConfigError(f"ice_host_addresses: {a!r} is not an IP address") from exc
    if not parsed:
        raise ConfigError("ice_host_addresses is empty: no ICE candidate could be gathered")

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [str(ip) for ip in parsed if (ip.version == 4 and use_ipv4) or (ip.version == 6 and use_ipv6)]

    previous: HostAddresses = aioice.ice.get_host_addresses
    setattr(aioice.ice, "get_host_addresses", host_addresses)  # noqa: B010 (a deliberate process-wide patch)
    log.info("ICE host candidates restricted to %s", ", ".join(map(str, parsed)))

    def undo() -> None:
        if aioice.ice.get_host_addresses is host_addresses:
            setattr(aioice.ice, "get_host_addresses", previous)  # noqa: B010

    return undo
