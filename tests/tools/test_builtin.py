from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.tools.conftest import FakeCall
from tests.tools.strict_checker import strict_problems
from voicebot.errors import ToolDefinitionError
from voicebot.events import ToolCall
from voicebot.tools import ToolRunner
from voicebot.tools.builtin import end_call, get_current_time, send_dtmf, transfer_call_tool

TARGETS = {"sales": "sip:sales@pbx.example.com", "support": "+15550100"}


def call(name: str, arguments: dict[str, Any]) -> ToolCall:
    return ToolCall(call_id="call_b", name=name, arguments=json.dumps(arguments))


@pytest.fixture
def runner() -> ToolRunner:
    return ToolRunner(
        [end_call, send_dtmf, get_current_time, transfer_call_tool(TARGETS, aliases={"billing": "support"})]
    )


async def test_end_call_hangs_up(runner: ToolRunner, control: FakeCall) -> None:
    out = await runner.run(call("end_call", {"reason": "caller said bye"}), control)
    assert json.loads(out) == {"status": "hanging up"}
    await runner.run(call("end_call", {"reason": None}), control)
    assert control.actions == [("hang_up", "caller said bye"), ("hang_up", "ended by the assistant")]


async def test_transfer_only_to_allowed_targets(runner: ToolRunner, control: FakeCall) -> None:
    assert json.loads(await runner.run(call("transfer_call", {"target": "sales"}), control)) == {
        "status": "transferring",
        "target": "sales",
    }
    await runner.run(call("transfer_call", {"target": "billing"}), control)  # alias → support
    for bad in ["+15551234567", "sip:evil@attacker.example", "Sales", ""]:
        out = json.loads(await runner.run(call("transfer_call", {"target": bad}), control))
        assert out["error"] == "invalid arguments for transfer_call", bad
    assert control.actions == [("transfer", "sip:sales@pbx.example.com"), ("transfer", "+15550100")]


def test_transfer_schema_lists_names_never_destinations() -> None:
    t = transfer_call_tool(TARGETS, aliases={"billing": "support"})
    params = t.realtime_definition()["parameters"]
    assert params == {
        "type": "object",
        "properties": {
            "target": {
                "type": "string",
                "enum": ["sales", "support", "billing"],
                "description": "Where to transfer the caller.",
            }
        },
        "required": ["target"],
        "additionalProperties": False,
    }
    assert strict_problems(params) == []
    assert "15550100" not in json.dumps(t.realtime_definition())


def test_transfer_tool_configuration_errors() -> None:
    with pytest.raises(ToolDefinitionError, match="at least one"):
        transfer_call_tool({})
    with pytest.raises(ToolDefinitionError, match="unknown target 'nowhere'"):
        transfer_call_tool(TARGETS, aliases={"x": "nowhere"})


async def test_transfer_function_refuses_unknown_names_even_when_called_directly(control: FakeCall) -> None:
    from voicebot.tools import ToolContext, ToolError

    t = transfer_call_tool(TARGETS)
    with pytest.raises(ToolError, match="cannot transfer to"):
        await t(ToolContext(control), "+15551234567")
    assert control.actions == []


async def test_send_dtmf_validates_digits(runner: ToolRunner, control: FakeCall) -> None:
    assert json.loads(await runner.run(call("send_dtmf", {"digits": "12*#AD"}), control)) == {
        "sent": "12*#AD"
    }
    for bad in ["12x", "", "e", "1 2", "a", "1" * 33]:
        out = json.loads(await runner.run(call("send_dtmf", {"digits": bad}), control))
        assert out["error"] == "invalid arguments for send_dtmf", bad
    assert control.actions == [("send_dtmf", "12*#AD")]


async def test_current_time_in_a_zone(runner: ToolRunner, control: FakeCall) -> None:
    out = json.loads(await runner.run(call("get_current_time", {"timezone": "Asia/Tokyo"}), control))
    stamp = dt.datetime.fromisoformat(out["iso"])
    assert stamp.utcoffset() == dt.timedelta(hours=9)
    assert abs((stamp - dt.datetime.now(ZoneInfo("Asia/Tokyo"))).total_seconds()) < 5
    assert out["timezone"] == "Asia/Tokyo" and out["spoken"]


async def test_current_time_default_zone(runner: ToolRunner, control: FakeCall) -> None:
    out = json.loads(await runner.run(call("get_current_time", {"timezone": None}), control))
    stamp = dt.datetime.fromisoformat(out["iso"])
    assert stamp.tzinfo is not None and abs((stamp - dt.datetime.now(dt.UTC)).total_seconds()) < 5


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "", "Europe/"])
async def test_bad_time_zone_is_an_error_output(runner: ToolRunner, control: FakeCall, zone: str) -> None:
    out = json.loads(await runner.run(call("get_current_time", {"timezone": zone}), control))
    assert out["error"].startswith(f"unknown time zone {zone!r}")


def test_builtin_schemas_are_strict() -> None:
    for t in (end_call, send_dtmf, get_current_time):
        assert strict_problems(t.realtime_definition()["parameters"]) == []
    assert (
        send_dtmf.realtime_definition()["parameters"]["properties"]["digits"]["pattern"]
        == "^[0-9*#A-D]{1,32}$"
    )
