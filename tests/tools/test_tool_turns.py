"""Tool behaviour inside a real conversation turn: the Realtime core (pure) + the ToolRunner.

For each misbehaving tool (bad arguments, timeout, exception, two concurrent calls, a cancellable tool cut by
barge-in, a slow tool that needs a filler) the conversation goes on: every call gets a function_call_output
and exactly ONE response.create follows, after response.done. Frames are validated against the SDK's types.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from tests.realtime.helpers import validate_client_event, validate_server_event
from tests.realtime.make_golden import function_call_item, response, session_object
from voicebot.events import ToolCall
from voicebot.realtime.session import RealtimeCore
from voicebot.realtime.wire import SessionConfig
from voicebot.tools import ToolRunner, tool


@tool(timeout=0.1)
async def slow_lookup(query: str) -> str:
    """Looks something up, slowly.

    Args:
        query: What to look up.
    """
    await asyncio.sleep(5)
    return "never"


@tool
async def add(a: int, b: int) -> int:
    """Adds two numbers.

    Args:
        a: First number.
        b: Second number.
    """
    return a + b


@tool
def explode(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why.
    """
    raise RuntimeError(f"kaboom: {reason}")


@tool(cancellable=True, timeout=10)
async def long_search(topic: str) -> str:
    """A long search the caller may interrupt.

    Args:
        topic: The topic.
    """
    await asyncio.sleep(10)
    return "found"


@tool(timeout=5, filler="Let me check that for you.")
async def careful_check(item: str) -> str:
    """Takes a moment.

    Args:
        item: What to check.
    """
    await asyncio.sleep(0.3)
    return f"{item} is fine"


@dataclass
class Control:
    """The call side of the tools (what a Call would do): ``say`` becomes a response on the core."""

    core: RealtimeCore
    call_id: str = "call_test"
    caller: str = "test"
    said: list[str] = field(default_factory=list)

    async def hang_up(self, reason: str = "") -> None: ...

    async def transfer(self, target: str) -> None: ...

    async def send_dtmf(self, digits: str) -> None: ...

    async def say(self, text: str) -> None:
        self.said.append(text)
        self.core.say(text)

    async def update_session(
        self,
        *,
        instructions: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        voice: str | None = None,
    ) -> None: ...


class Turn:
    """Drives one function-calling response through the core, the way the server would."""

    def __init__(self, runner: ToolRunner) -> None:
        pieces = runner.session_config()
        self.core = RealtimeCore(SessionConfig(instructions="Be brief.", tools=tuple(pieces["tools"])))
        self.runner = runner
        self.control = Control(self.core)
        self.sent: list[dict[str, Any]] = []
        self.core.connection_opened()
        self.server("session.created", session=session_object("sess_T1aA2bB3cC4dD5eE6fF7g"))
        self.server("session.updated", session=session_object("sess_T1aA2bB3cC4dD5eE6fF7g"))
        self.drain()
        self._n = 0

    def server(self, kind: str, **fields: Any) -> None:
        self._n = getattr(self, "_n", 0) + 1
        event = {"type": kind, "event_id": f"event_T{self._n:020d}", **fields}
        validate_server_event(event)
        self.core.receive_message(json.dumps(event))

    def drain(self) -> list[dict[str, Any]]:
        frames = [json.loads(m) for m in self.core.messages_to_send()]
        for f in frames:
            validate_client_event(f)
        self.sent += frames
        return frames

    def calls(self) -> list[ToolCall]:
        out = []
        while (ev := self.core.next_event()) is not None:
            if isinstance(ev, ToolCall):
                out.append(ev)
        return out

    def model_calls(self, resp: str, calls: list[tuple[str, dict[str, Any] | str]]) -> list[dict[str, Any]]:
        self.server("response.created", response=response(resp, "in_progress", []))
        items = []
        for i, (name, args) in enumerate(calls):
            text = args if isinstance(args, str) else json.dumps(args)
            item, call = f"item_T{resp[-4:]}{i:016d}", f"call_T{resp[-4:]}{i:011d}"
            self.server(
                "response.output_item.added",
                response_id=resp,
                output_index=i,
                item=function_call_item(item, call, name, "", "in_progress"),
            )
            ids = {"response_id": resp, "item_id": item, "output_index": i, "call_id": call}
            self.server("response.function_call_arguments.done", **ids, name=name, arguments=text)
            done = function_call_item(item, call, name, text, "completed")
            self.server("response.output_item.done", response_id=resp, output_index=i, item=done)
            items.append(done)
        return items

    async def run_tools(self, calls: list[ToolCall]) -> list[str]:
        async def one(c: ToolCall) -> str:
            out = await self.runner.run(c, self.control)
            self.core.submit_tool_output(c.call_id, out)
            return out

        return list(await asyncio.gather(*(one(c) for c in calls)))

    def response_creates_after(self, index: int) -> list[int]:
        return [i for i, f in enumerate(self.sent) if f["type"] == "response.create" and i >= index]

    def outputs(self) -> dict[str, str]:
        return {
            f["item"]["call_id"]: f["item"]["output"]
            for f in self.sent
            if f["type"] == "conversation.item.create" and f["item"]["type"] == "function_call_output"
        }


async def one_turn(
    runner: ToolRunner, calls: list[tuple[str, dict[str, Any] | str]]
) -> tuple[Turn, list[str]]:
    t = Turn(runner)
    items = t.model_calls("resp_T000000000000000001", calls)
    tool_calls = t.calls()
    assert len(tool_calls) == len(calls)
    running = asyncio.ensure_future(t.run_tools(tool_calls))
    await asyncio.sleep(0)
    before_done = len(t.drain())
    assert t.response_creates_after(0) == [], "nothing is sent before response.done"
    t.server("response.done", response=response("resp_T000000000000000001", "completed", items))
    done_at = len(t.sent)
    outputs = await running
    t.drain()
    creates = t.response_creates_after(done_at)
    assert len(creates) == 1, f"exactly one response.create after response.done, got {creates}"
    assert all(f["type"] != "response.create" for f in t.sent[:done_at])
    fco = [i for i, f in enumerate(t.sent) if f["type"] == "conversation.item.create"]
    assert fco and max(fco) < creates[0], "the outputs go first, then the one response.create"
    assert before_done == 0
    return t, outputs


async def test_a_bad_argument_goes_back_as_a_readable_error() -> None:
    t, (out,) = await one_turn(ToolRunner([add]), [("add", {"a": "three", "b": 2})])
    body = json.loads(out)
    assert "invalid arguments" in body["error"] and body["details"][0]["field"] == "a"
    assert json.loads(next(iter(t.outputs().values())))["error"] == body["error"]


async def test_a_timeout_becomes_an_error_output() -> None:
    _, (out,) = await one_turn(ToolRunner([slow_lookup]), [("slow_lookup", {"query": "x"})])
    assert "timed out" in json.loads(out)["error"]


async def test_an_exception_becomes_an_error_output() -> None:
    _, (out,) = await one_turn(ToolRunner([explode]), [("explode", {"reason": "test"})])
    assert "kaboom: test" in json.loads(out)["error"]


async def test_two_calls_in_one_response_run_concurrently_and_get_one_response_create() -> None:
    runner = ToolRunner([add, careful_check], filler_after_s=None)
    loop = asyncio.get_running_loop()
    start = loop.time()
    t, outs = await one_turn(runner, [("careful_check", {"item": "a"}), ("careful_check", {"item": "b"})])
    assert loop.time() - start < 0.55  # two 0.3 s tools overlapped
    assert sorted(outs) == ["a is fine", "b is fine"]
    assert len(t.outputs()) == 2


async def test_a_cancellable_tool_is_cut_by_barge_in_and_the_turn_goes_on() -> None:
    runner = ToolRunner([long_search])
    t = Turn(runner)
    items = t.model_calls("resp_T000000000000000001", [("long_search", {"topic": "cats"})])
    (call,) = t.calls()
    running = asyncio.ensure_future(t.run_tools([call]))
    t.server("response.done", response=response("resp_T000000000000000001", "completed", items))
    done_at = len(t.drain())
    await asyncio.sleep(0.05)
    runner.cancel_cancellable("caller interrupted")  # what the Call does on ClearAudio
    (out,) = await asyncio.wait_for(running, 2)
    t.drain()
    assert "cancel" in json.loads(out)["error"]
    assert len(t.response_creates_after(done_at)) == 1


async def test_a_slow_tool_gets_a_filler_line_and_still_one_response_create_for_its_output() -> None:
    runner = ToolRunner([careful_check], filler_after_s=0.1)
    t = Turn(runner)
    items = t.model_calls("resp_T000000000000000001", [("careful_check", {"item": "the order"})])
    (call,) = t.calls()
    running = asyncio.ensure_future(t.run_tools([call]))
    t.server("response.done", response=response("resp_T000000000000000001", "completed", items))
    await asyncio.sleep(0.15)  # past filler_after_s: the filler is spoken as its own response
    t.drain()
    assert t.control.said == ["Let me check that for you."]
    (filler,) = [f for f in t.sent if f["type"] == "response.create"]
    assert "Let me check that for you." in filler["response"]["instructions"]
    assert filler["response"]["tool_choice"] == "none"
    t.server("response.created", response=response("resp_T000000000000000002", "in_progress", []))
    (out,) = await running  # the tool finishes while the filler is being spoken
    t.drain()
    assert out == "the order is fine"
    assert len([f for f in t.sent if f["type"] == "response.create"]) == 1, "queued behind the filler"
    mark = len(t.sent)
    t.server("response.done", response=response("resp_T000000000000000002", "completed", []))
    t.drain()
    after = [f["type"] for f in t.sent[mark:]]
    assert after.count("response.create") == 1
    assert "conversation.item.create" in [f["type"] for f in t.sent[: mark + after.index("response.create")]]
