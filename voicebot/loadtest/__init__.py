"""``voicebot loadtest``: many calls with recorded audio against a running voicebot, and a report.

WebRTC callers are aiortc peers (``webrtc_caller``); SIP callers are a minimal UDP user agent with G.711 RTP
(``sip_caller``). ``run_loadtest(LoadTestConfig(...))`` runs a test in-process and returns the ``LoadReport``;
see docs/loadtest.md. The names below are imported on first use, so building the ``voicebot`` argument
parser (which adds the ``loadtest`` subcommand) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicebot.loadtest.common import LoadTestConfig
    from voicebot.loadtest.report import CallResult, LoadReport, format_report
    from voicebot.loadtest.runner import run_loadtest

_WHERE = {
    "LoadTestConfig": "common",
    "CallResult": "report",
    "LoadReport": "report",
    "format_report": "report",
    "run_loadtest": "runner",
}

__all__ = ["CallResult", "LoadReport", "LoadTestConfig", "format_report", "run_loadtest"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"voicebot.loadtest.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'voicebot.loadtest' has no attribute {name!r}")
