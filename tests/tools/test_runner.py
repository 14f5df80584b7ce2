"""ToolRunner: every outcome of a function call becomes an output string for the model."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest

from tests.tools.conftest import FakeCall
from voicebot.events import ToolCall
from voicebot.tools import Agent, ToolContext, ToolError, ToolRunner, tool


def call(name: str, arguments: Any = None, call_id: str = "call_1") -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return ToolCall(call_id=call_id, name=name, arguments=text, item_id="item_1", response_id="resp_1")


@tool
async def add(a: int, b: int = 10) -> dict[str, int]:
    """Add two numbers."""
    return {"sum": a + b}


@tool
async def greet(ctx: ToolContext, name: str) -> str:
    """Greet someone out loud."""
    await ctx.say(f"Hello {name}")
    return f"greeted {name} on {ctx.call_id} for {ctx.caller} ({ctx.tool_call_id})"


@tool
async def nothing() -> None:
    """Do nothing."""


async def test_output_of_a_good_call(control: FakeCall) -> None:
    runner = ToolRunner([add, greet, nothing])
    assert json.loads(await runner.run(call("add", {"a": 2, "b": 3}), control)) == {"sum": 5}
    assert json.loads(await runner.run(call("add", {"a": 2, "b": None}), control)) == {"sum": 12}
    assert await runner.run(call("greet", {"name": "Ann"}, "call_9"), control) == (
        "greeted Ann on call-1 for sip:alice@example.com (call_9)"
    )
    assert control.actions == [("say", "Hello Ann")]
    assert json.loads(await runner.run(call("nothing", ""), control)) == {"ok": True}


async def test_bad_arguments_give_a_readable_error(control: FakeCall) -> None:
    runner = ToolRunner([add])
    out = json.loads(await runner.run(call("add", {"a": "two", "b": None}), control))
    assert out["error"] == "invalid arguments for add"
    assert out["details"][0]["field"] == "a" and "integer" in out["details"][0]["problem"]
    missing = json.loads(await runner.run(call("add", {"b": 1}), control))
    assert missing["details"] == [{"field": "a", "problem": "Field required"}]
    extra = json.loads(await runner.run(call("add", {"a": 1, "b": 1, "c": 1}), control))
    assert extra["details"][0]["field"] == "c"
    broken = json.loads(await runner.run(call("add", '{"a": 1'), control))
    assert "not a JSON object" in broken["error"]
    deep = json.loads(await runner.run(call("add", "[" * 100_000 + "]" * 100_000), control))
    assert "not a JSON object" in deep["error"]


async def test_unknown_tool(control: FakeCall) -> None:
    out = json.loads(await ToolRunner([add, nothing]).run(call("launch_rockets"), control))
    assert out == {"error": "unknown tool 'launch_rockets'", "available_tools": ["add", "nothing"]}


async def test_timeout_returns_an_error_quickly(control: FakeCall) -> None:
    cleaned_up = asyncio.Event()

    @tool(timeout=0.05, filler=False)
    async def stuck() -> str:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned_up.set()
        return "never"

    started = time.monotonic()
    out = json.loads(await ToolRunner([stuck]).run(call("stuck"), control))
    assert out == {"error": "stuck timed out after 0.05 seconds", "timeout_s": 0.05}
    assert time.monotonic() - started < 1.0
    assert cleaned_up.is_set()  # the tool was cancelled, not left running


async def test_runner_default_timeout_applies_to_tools_without_their_own(control: FakeCall) -> None:
    @tool
    async def slow() -> str:
        await asyncio.sleep(10)
        return "never"

    out = json.loads(
        await ToolRunner([slow], default_timeout_s=0.05, filler_after_s=None).run(call("slow"), control)
    )
    assert "timed out after 0.05 seconds" in out["error"]


async def test_exception_becomes_error_output_and_is_logged_with_the_call_id(
    control: FakeCall, caplog: pytest.LogCaptureFixture
) -> None:
    @tool
    async def explode(x: int) -> int:
        raise RuntimeError(f"boom {x}")

    with caplog.at_level(logging.ERROR, logger="voicebot.tools"):
        out = json.loads(await ToolRunner([explode]).run(call("explode", {"x": 7}, "call_xyz"), control))
    assert out == {"error": "explode failed: RuntimeError: boom 7"}
    record = next(r for r in caplog.records if r.name == "voicebot.tools")
    assert "call-1/call_xyz" in record.getMessage() and record.exc_info is not None


async def test_tool_error_is_a_clean_message(control: FakeCall) -> None:
    @tool
    def refuse() -> str:
        raise ToolError("the kitchen is closed")

    assert json.loads(await ToolRunner([refuse]).run(call("refuse"), control)) == {
        "error": "the kitchen is closed"
    }


async def test_sync_tools_run_in_a_worker_thread(control: FakeCall) -> None:
    loop_thread = threading.get_ident()

    @tool
    def where(tag: str) -> dict[str, Any]:
        return {"tag": tag, "same_thread": threading.get_ident() == loop_thread}

    out = json.loads(await ToolRunner([where]).run(call("where", {"tag": "t"}), control))
    assert out == {"tag": "t", "same_thread": False}


async def test_sync_tool_timeout_does_not_block_the_loop(control: FakeCall) -> None:
    release = threading.Event()

    @tool(timeout=0.05, filler=False)
    def blocking() -> str:
        release.wait(2)
        return "late"

    started = time.monotonic()
    out = json.loads(await ToolRunner([blocking]).run(call("blocking"), control))
    release.set()
    assert "timed out" in out["error"] and time.monotonic() - started < 1.0


async def test_two_calls_in_one_response_run_concurrently(control: FakeCall) -> None:
    a_started, b_started = asyncio.Event(), asyncio.Event()

    @tool(timeout=1.0, filler=False)
    async def first() -> str:
        a_started.set()
        await b_started.wait()  # only returns if `second` runs while `first` is still running
        return "first done"

    @tool(timeout=1.0, filler=False)
    async def second() -> str:
        b_started.set()
        await a_started.wait()
        return "second done"

    runner = ToolRunner([first, second])
    outputs = await asyncio.gather(
        runner.run(call("first", call_id="c1"), control), runner.run(call("second", call_id="c2"), control)
    )
    assert list(outputs) == ["first done", "second done"]


async def test_cancel_cancellable_cuts_only_cancellable_tools(control: FakeCall) -> None:
    running = asyncio.Event()
    finish_other = asyncio.Event()

    @tool(cancellable=True, filler=False)
    async def search(q: str) -> str:
        running.set()
        await asyncio.sleep(10)
        return "never"

    @tool(filler=False)
    async def save(q: str) -> str:
        await finish_other.wait()
        return f"saved {q}"

    runner = ToolRunner([search, save], default_timeout_s=5)
    cut = asyncio.create_task(runner.run(call("search", {"q": "x"}, "c1"), control))
    kept = asyncio.create_task(runner.run(call("save", {"q": "y"}, "c2"), control))
    await asyncio.wait_for(running.wait(), 1)
    assert runner.in_flight_cancellable == 1
    runner.cancel_cancellable("caller barged in")
    out = json.loads(await asyncio.wait_for(cut, 1))
    assert out == {"error": "search was cancelled", "cancelled": True, "reason": "caller barged in"}
    assert not kept.done()
    finish_other.set()
    assert await asyncio.wait_for(kept, 1) == "saved y"
    assert runner.in_flight_cancellable == 0
    runner.cancel_cancellable()  # nothing in flight: a no-op


async def test_filler_is_said_once_for_a_slow_tool(control: FakeCall) -> None:
    @tool(filler="Let me look that up.")
    async def lookup() -> str:
        await asyncio.sleep(0.15)
        return "found"

    runner = ToolRunner([lookup], filler_after_s=0.03)
    assert await runner.run(call("lookup"), control) == "found"
    assert control.actions == [("say", "Let me look that up.")]


async def test_default_filler_and_no_filler_for_fast_or_silenced_tools(control: FakeCall) -> None:
    @tool
    async def slow() -> str:
        await asyncio.sleep(0.1)
        return "slow"

    @tool(filler=False)
    async def quiet() -> str:
        await asyncio.sleep(0.1)
        return "quiet"

    runner = ToolRunner([slow, quiet, add], filler_after_s=0.03, filler_text="Hmm, one second.")
    await runner.run(call("add", {"a": 1, "b": None}), control)
    await runner.run(call("quiet"), control)
    assert control.actions == []
    await runner.run(call("slow"), control)
    assert control.actions == [("say", "Hmm, one second.")]


async def test_a_failing_filler_does_not_fail_the_tool() -> None:
    class BrokenSay(FakeCall):
        async def say(self, text: str) -> None:
            raise ConnectionError("audio gone")

    @tool
    async def slow() -> str:
        await asyncio.sleep(0.08)
        return "done anyway"

    assert await ToolRunner([slow], filler_after_s=0.02).run(call("slow"), BrokenSay()) == "done anyway"


async def test_cancelling_run_cancels_the_tool(control: FakeCall) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    @tool(filler=False)
    async def long() -> str:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    task = asyncio.create_task(ToolRunner([long]).run(call("long"), control))
    await asyncio.wait_for(started.wait(), 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(cancelled.wait(), 1)


@tool
async def weather(city: str) -> str:
    """Weather."""
    return f"sunny in {city}"


@tool
async def hola(nombre: str) -> str:
    """Saluda."""
    return f"hola {nombre}"


async def test_handoff_switches_the_active_agent_and_updates_the_session(control: FakeCall) -> None:
    spanish = Agent("Spanish agent", "Habla español.", tools=[hola], voice="cedar")
    triage = Agent("Triage agent", "Route by language.", tools=[weather], handoffs=[spanish])
    runner = ToolRunner(triage)
    assert [t["name"] for t in runner.session_config()["tools"]] == ["weather", "transfer_to_spanish_agent"]

    out = json.loads(await runner.run(call("transfer_to_spanish_agent"), control))
    assert out == {"assistant": "Spanish agent", "status": "transferred"}
    assert runner.agent is spanish
    assert control.actions == [
        (
            "update_session",
            {"instructions": "Habla español.", "tools": [hola.realtime_definition()], "voice": "cedar"},
        )
    ]
    assert await runner.run(call("hola", {"nombre": "Ana"}), control) == "hola Ana"
    assert (
        json.loads(await runner.run(call("weather", {"city": "x"}), control))["error"]
        == "unknown tool 'weather'"
    )


async def test_failed_handoff_keeps_the_previous_agent(control: FakeCall) -> None:
    control.fail_update = True
    triage = Agent("Triage", "Route.", handoffs=[Agent("English", "English only.")])
    runner = ToolRunner(triage)
    out = json.loads(await runner.run(call("transfer_to_english"), control))
    assert out["error"].startswith("handoff to English failed: ConnectionError")
    assert runner.agent is triage


def test_runner_settings_are_checked() -> None:
    from voicebot.errors import ConfigError

    with pytest.raises(ConfigError, match="default_timeout_s"):
        ToolRunner([add], default_timeout_s=0)
    with pytest.raises(ConfigError, match="filler_after_s"):
        ToolRunner([add], filler_after_s=-1)
