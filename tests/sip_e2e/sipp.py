"""Run sipp (Debian package sip-tester) against the bot: fill a scenario from tests/data/sipp, run, report."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).parent.parent / "data" / "sipp"
SIPP = shutil.which("sipp")
DTMF_PCAPS = Path("/usr/share/sip-tester")


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that is free right now (sipp binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_even_udp_port() -> int:
    """sipp's media port (-mp) must be even-ish friendly: RTP on even ports, and port+2 for video is bound."""
    for _ in range(50):
        port = free_udp_port()
        port -= port % 2
        try:
            for p in (port, port + 1, port + 2, port + 3):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free even UDP port block")


def scenario(name: str, dest: Path, **values: object) -> Path:
    """Copy scenario ``name`` to ``dest`` with every ``@KEY@`` replaced by ``values[key]``."""
    text = (SCENARIOS / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key.upper()}@", str(value))
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, f"unfilled placeholders in {name}: {left}"
    out = dest / name
    out.write_text(text)
    return out


def _error_logs(cwd: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in cwd.glob("*_errors.log"))


@dataclass
class SippResult:
    rc: int
    stdout: str
    stderr: str
    errors: str  # the -trace_err log

    def explain(self) -> str:
        return f"sipp rc={self.rc}\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-2000:]}\nerrors:\n{self.errors[-3000:]}"


async def run_sipp(
    scenario_file: Path,
    target: tuple[str, int],
    *,
    cwd: Path,
    media_port: int | None = None,
    calls: int = 1,
    keys: dict[str, str] | None = None,
    extra: list[str] | None = None,
    limit_s: float = 60.0,
    local_port: int | None = None,
) -> SippResult:
    """Run one sipp UAC (or UAS) scenario to completion; kill it after ``limit_s``."""
    assert SIPP is not None
    args = [
        SIPP,
        f"{target[0]}:{target[1]}",
        "-sf",
        str(scenario_file),
        "-i",
        "127.0.0.1",
        "-p",
        str(local_port or free_udp_port()),
        "-m",
        str(calls),
        "-nostdin",
        "-trace_err",
        "-timeout",
        f"{int(limit_s)}s",
        "-timeout_error",
    ]
    if media_port is not None:
        args += ["-mi", "127.0.0.1", "-mp", str(media_port)]
    for key, value in (keys or {}).items():
        args += ["-key", key, value]
    args += extra or []
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s + 10)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    errors = await asyncio.to_thread(_error_logs, cwd)
    return SippResult(
        proc.returncode if proc.returncode is not None else -1,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        errors,
    )
