"""A private network namespace for the calling thread: only ``lo`` exists, so no packet can leave.

``private_netns()`` moves the current thread (the test's event-loop thread) into a fresh network namespace
with just the loopback interface up, and moves it back afterwards. Sockets, threads and child processes
created meanwhile (aiortc's ICE sockets, the loop's executor threads, Chromium, ``voicebot serve``) live in
that namespace, so every ICE candidate and every packet stays on its loopback. Needs CAP_SYS_ADMIN (root).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def netns_unavailable_reason() -> str | None:
    """Why a private network namespace cannot be made here, or None when it can."""
    if not hasattr(_libc, "unshare") or not hasattr(_libc, "setns"):
        return "libc has no unshare/setns"
    if os.geteuid() != 0:
        return "creating a network namespace needs root (CAP_SYS_ADMIN)"
    if not os.path.exists("/proc/thread-self/ns/net"):
        return "/proc/thread-self/ns/net is missing"
    return None


def current_netns() -> str:
    return os.readlink("/proc/thread-self/ns/net")


@contextlib.contextmanager
def private_netns() -> Iterator[str]:
    """Run the body in a fresh network namespace (loopback only); yields its id (``net:[…]``)."""
    reason = netns_unavailable_reason()
    if reason is not None:
        raise OSError(reason)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True, timeout=10)
            yield current_netns()
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back to the original namespace failed: {os.strerror(err)}")
    finally:
        os.close(home)


def interfaces() -> list[str]:
    """Names of the network interfaces this thread can see."""
    out = subprocess.run(["ip", "-o", "link"], check=True, capture_output=True, text=True, timeout=10).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
