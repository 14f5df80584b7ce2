"""A small WebDriver BiDi client for Firefox (Debian's firefox-esr speaks BiDi natively; Playwright can only
drive its own patched Firefox builds).

``firefox_bidi(profile, pulse)`` starts ``firefox-esr --headless`` with a throw-away profile whose prefs keep
it off the network (no updates, telemetry, remote settings) and let WebRTC use loopback ICE, then yields a
``Bidi`` session on the first tab. Values come back from ``evaluate`` through ``JSON.stringify``.

Headless Firefox has no fake audio output: without a sound device its AudioContexts never leave
"suspended". ``null_audio_server(dir)`` runs a private PulseAudio (a null sink, a Unix socket in ``dir``, no
network modules) for the browser's audio.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientWebSocketResponse

FIREFOX = "/usr/bin/firefox-esr"
PULSEAUDIO = "/usr/bin/pulseaudio"

PREFS: dict[str, object] = {
    # nothing leaves the machine (the test's namespace has no route anyway)
    "app.update.enabled": False,
    "app.normandy.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "extensions.update.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    # WebRTC on loopback, no permission prompt, audio may start without a click
    "media.navigator.permission.disabled": True,
    "media.navigator.streams.fake": True,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "media.autoplay.blocking_policy": 0,
    # no sound card here: a private PulseAudio with a null sink (null_audio_server) lets WebAudio run
    "media.cubeb.backend": "pulse",
}


class BidiError(RuntimeError):
    pass


class Bidi:
    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.context = ""

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        await self._ws.send_json({"id": msg_id, "method": method, "params": params})
        while True:
            reply: dict[str, Any] = await self._ws.receive_json()
            if reply.get("id") != msg_id:
                continue  # an event
            if reply.get("type") == "error":
                raise BidiError(f"{method}: {reply.get('error')}: {reply.get('message')}")
            result: dict[str, Any] = reply["result"]
            return result

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` (awaited if it is a promise) in the tab."""
        wrapped = f"(async () => JSON.stringify(await ({expression})))()"
        result = await self.call(
            "script.evaluate",
            expression=wrapped,
            target={"context": self.context},
            awaitPromise=True,
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BidiError(f"script error: {details.get('text')}")
        value = result["result"].get("value")
        return None if value is None else json.loads(value)

    async def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.2)

    async def click(self, selector: str) -> None:
        """A real pointer click in the middle of the element (it counts as a user gesture, unlike .click())."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = (round(v) for v in box)
        actions = [
            {"type": "pointerMove", "x": x, "y": y},
            {"type": "pointerDown", "button": 0},
            {"type": "pointerUp", "button": 0},
        ]
        await self.call(
            "input.performActions",
            context=self.context,
            actions=[
                {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": actions}
            ],
        )

    async def screenshot(self, path: Path) -> None:
        result = await self.call("browsingContext.captureScreenshot", context=self.context)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(result["data"]))


@contextlib.asynccontextmanager
async def firefox_bidi(profile: Path, pulse_server: str) -> AsyncIterator[Bidi]:
    await asyncio.to_thread(_write_profile, profile)
    env = {**os.environ, "PULSE_SERVER": pulse_server}
    proc = await asyncio.create_subprocess_exec(
        FIREFOX, "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port", "0",
        "--width", "1280", "--height", "800", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = None
        deadline = asyncio.get_running_loop().time() + 60
        while url is None:
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            if not line or asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("firefox did not start its WebDriver BiDi server")
            m = re.search(rb"WebDriver BiDi listening on (ws://\S+)", line)
            url = m.group(1).decode() if m else None
        drain = asyncio.create_task(_drain(proc.stderr))
        async with ClientSession() as http, http.ws_connect(f"{url}/session", max_msg_size=0) as ws:
            bidi = Bidi(ws)
            await bidi.call("session.new", capabilities={})
            tree = await bidi.call("browsingContext.getTree")
            bidi.context = tree["contexts"][0]["context"]
            try:
                yield bidi
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(bidi.call("session.end"), 5)
        drain.cancel()
    finally:
        await stop_process(proc, 15)


async def stop_process(proc: asyncio.subprocess.Process, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _write_profile(profile: Path) -> None:
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "user.js").write_text(
        "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
    )


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


@contextlib.asynccontextmanager
async def null_audio_server(directory: Path) -> AsyncIterator[str]:
    """A private PulseAudio daemon whose only sink discards audio; yields its ``PULSE_SERVER`` address."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    socket_path = directory / "native"
    env = {**os.environ, "HOME": str(directory), "XDG_RUNTIME_DIR": str(directory)}
    proc = await asyncio.create_subprocess_exec(
        PULSEAUDIO, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes",
        "-L", "module-null-sink sink_name=null",
        "-L", f"module-native-protocol-unix auth-anonymous=1 socket={socket_path}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not socket_path.exists():
            if proc.returncode is not None or asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("pulseaudio did not start")
            await asyncio.sleep(0.05)
        yield f"unix:{socket_path}"
    finally:
        await stop_process(proc, 10)
