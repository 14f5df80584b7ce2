"""The ``voicebot`` command line.

voicebot serve [--host H] [--port P] [--sip-port N] [--agent mod:attr]   the server with the demo page
voicebot local [--host H] [--port P]                                      the local engine alone
voicebot --version
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from voicebot import __version__


def _add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (env VOICEBOT_HOST; default 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (env VOICEBOT_PORT; default 8080; 0 = any free port)")
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="env VOICEBOT_LOG_LEVEL; default info",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebot", description="Realtime voice agent server.")
    parser.add_argument("--version", action="version", version=f"voicebot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server with the demo page")
    _add_server_flags(serve)
    serve.add_argument("--sip-port", type=int, help="UDP port for SIP (env VOICEBOT_SIP_PORT; default off)")
    serve.add_argument("--agent", help="agent to load as 'package.module:attribute' (env VOICEBOT_AGENT)")

    local = sub.add_parser("local", help="run only the embedded OpenAI-compatible local engine")
    _add_server_flags(local)
    return parser


def _overrides(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2

    from pydantic import ValidationError

    from voicebot.config import Settings

    try:
        settings = Settings(**_overrides(args, ["host", "port", "log_level", "sip_port", "agent"]))
    except ValidationError as exc:
        print(f"voicebot: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from voicebot.errors import VoicebotError

    try:
        asyncio.run(_serve(settings, engine_only=args.command == "local"))
    except VoicebotError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"voicebot: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(settings: Any, *, engine_only: bool) -> None:
    from aiohttp import web

    if engine_only:
        from voicebot.local.app import create_engine_app

        root = web.Application()
        root.add_subapp("/v1", create_engine_app(settings))
        app = root
    else:
        from voicebot.server.app import BASE_URL, create_app

        app = create_app(settings)

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = settings.port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    base = f"http://{settings.host}:{port}"
    if not engine_only:
        app[BASE_URL] = base
    what = "local engine" if engine_only else "voicebot"
    logging.getLogger("voicebot").info("%s listening on %s", what, base)
    print(f"{what} listening on {base}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
