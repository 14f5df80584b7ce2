"""``voicebot loadtest``: the command line of the load tester (see docs/loadtest.md).

::

    voicebot loadtest --url http://HOST:PORT --calls N [--concurrency C] [--ramp-s S] [--audio FILE.wav ...]
                      [--duration-s D] [--max-s M] [--json OUT.json]
                      [--transport webrtc|sip] [--sip-target sip:bot@HOST:PORT]

Progress goes to stderr once a second and per call; the report goes to stdout. Exit code 0 when every call
was answered, 1 otherwise, 2 for bad arguments or unreadable audio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicebot.errors import VoicebotError

if TYPE_CHECKING:  # the parser is built for every voicebot command: import the load tester only to run it
    from voicebot.loadtest.common import LoadTestConfig


def add_parser(sub: Any) -> None:
    """Add ``loadtest`` to the ``voicebot`` subcommands."""
    p = sub.add_parser(
        "loadtest",
        help="call a running voicebot many times with recorded audio and report latency and failures",
        description="Load-test a voicebot server with WebRTC (aiortc) or SIP callers that play WAV files.",
    )
    p.add_argument("--url", help="the server, http://HOST:PORT (WebRTC calls go to POST /api/calls)")
    p.add_argument("--calls", type=int, default=1, help="how many calls in total (default 1)")
    p.add_argument("--concurrency", type=int, help="at most this many calls at once (default: all)")
    p.add_argument("--ramp-s", type=float, default=0.0, help="spread the call starts over this many seconds")
    p.add_argument(
        "--audio",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE.wav",
        help="what the callers say, one utterance per file, in order (any rate; resampled)",
    )
    p.add_argument(
        "--duration-s",
        type=float,
        help="stay this long after the answer, repeating the audio (default: play each file once, "
        "hang up after the last answer)",
    )
    p.add_argument("--max-s", type=float, default=300.0, help="the whole run ends by then (default 300)")
    p.add_argument(
        "--json", type=Path, dest="json_path", metavar="OUT.json", help="also write the report here"
    )
    p.add_argument("--transport", choices=["webrtc", "sip"], default="webrtc", help="default webrtc")
    p.add_argument("--sip-target", help="for --transport sip: sip:bot@HOST:PORT")
    p.add_argument("--connect-timeout-s", type=float, default=15.0, help="per call, until answered (15)")
    p.add_argument(
        "--answer-timeout-s", type=float, default=20.0, help="per turn, until the agent's answer ended (20)"
    )
    p.add_argument(
        "--ice-host",
        action="append",
        dest="ice_host_addresses",
        metavar="ADDR",
        help="WebRTC: offer only this local address as ICE candidate (repeatable; default: every "
        "interface, or the loopback address for a loopback --url)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def config_from_args(args: argparse.Namespace) -> LoadTestConfig:
    from voicebot.loadtest.common import LoadTestConfig

    return LoadTestConfig(
        url=args.url,
        calls=args.calls,
        concurrency=args.concurrency,
        ramp_s=args.ramp_s,
        audio=list(args.audio),
        duration_s=args.duration_s,
        max_s=args.max_s,
        transport=args.transport,
        sip_target=args.sip_target,
        connect_timeout_s=args.connect_timeout_s,
        answer_timeout_s=args.answer_timeout_s,
        ice_host_addresses=args.ice_host_addresses,
        json_path=args.json_path,
    )


def run_command(args: argparse.Namespace) -> int:
    from voicebot.loadtest.report import format_report
    from voicebot.loadtest.runner import run_loadtest

    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    cfg = config_from_args(args)
    progress = (lambda _line: None) if args.quiet else None
    try:
        if progress is None:
            report = asyncio.run(run_loadtest(cfg))
        else:
            report = asyncio.run(run_loadtest(cfg, progress=progress))
    except VoicebotError as exc:
        print(f"voicebot loadtest: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("voicebot loadtest: interrupted", file=sys.stderr)
        return 1
    print(format_report(report), flush=True)
    if cfg.json_path is not None:
        print(f"report written to {cfg.json_path}", flush=True)
    return 0 if report.ok else 1
