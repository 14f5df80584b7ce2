"""Failover end to end: a call on the Realtime API (the local engine over a real WebSocket) loses its upstream
(quota error, a drop mid-response with reconnects refused, refused at the start) and continues on the cascade
in place: the next utterance gets a spoken answer, function tools still run, the conversation carries over.
Then the Realtime upstream recovers and the call switches back at a turn boundary."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.fallback.conftest import EXAMPLES, Engine
from tests.fallback.helpers import Driver, lines, until
from voicebot.audio.chunk import PcmChunk
from voicebot.call import Call
from voicebot.events import ModelError, ModelEvent, Notice, ToolCall
from voicebot.fallback.cascade import CascadeConfig, CascadeModelSession
from voicebot.fallback.failover import FailoverModelSession, FailoverPolicy
from voicebot.fallback.history import History
from voicebot.fileport import FileAudioPort
from voicebot.realtime.client import ConnectOptions, RealtimeModelSession
from voicebot.realtime.wire import SessionConfig
from voicebot.tools import ToolRunner, load_agent

pytestmark = [pytest.mark.asyncio(loop_scope="package"), pytest.mark.slow]


class Rig:
    """A weather-agent call over a FailoverModelSession against the shared engine."""

    def __init__(self, engine: Engine, policy: FailoverPolicy) -> None:
        self.engine = engine
        self.runner = ToolRunner(load_agent(f"{EXAMPLES / 'weather_agent.py'}:agent"))
        self.cascades: list[CascadeModelSession] = []
        self.primaries: list[RealtimeModelSession] = []
        self.model = FailoverModelSession(self._primary, self._fallback, policy)
        self.port = FileAudioPort(PcmChunk.silence(200, 24000), hangup_when_idle_s=None, max_s=120, speed=2.0)
        self.call = Call(self.port, self.model, tools=self.runner)
        self.driver = Driver(self.call, self.port)
        self.seen: list[ModelEvent] = self.driver.seen
        self.task: asyncio.Task[object] | None = None

    def _primary(self) -> RealtimeModelSession:
        pieces = self.runner.session_config()
        config = SessionConfig(instructions=pieces["instructions"], tools=tuple(pieces["tools"]))
        options = ConnectOptions(self.engine.ws_base_url, "sk-test")
        session = RealtimeModelSession(options, config, reconnect_attempts=2, reconnect_backoff_s=0.05)
        self.primaries.append(session)
        return session

    def _fallback(self, history: History) -> CascadeModelSession:
        pieces = self.runner.session_config()
        config = CascadeConfig(instructions=pieces["instructions"], tools=tuple(pieces["tools"]))
        cascade = CascadeModelSession(self.engine.client(), config, history=history, close_client=True)
        self.cascades.append(cascade)
        return cascade

    async def __aenter__(self) -> Rig:
        self.task = asyncio.create_task(self.call.run())
        await until(lambda: self.model.active is not None, 10, "the model session to start")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.port.hang_up()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)

    @property
    def mode(self) -> str:
        return self.model.mode

    def notices(self, kind: str) -> list[Notice]:
        return [e for e in self.seen if isinstance(e, Notice) and e.kind == kind]

    def tool_calls(self) -> list[ToolCall]:
        return [e for e in self.seen if isinstance(e, ToolCall)]


def no_probe() -> FailoverPolicy:
    return FailoverPolicy(open_timeout_s=3.0, reconnect_grace_s=1.0, probe_initial_s=300.0)


def user_texts(items: list[dict[str, object]]) -> list[str]:
    return [str(i["content"]).lower() for i in items if i.get("role") == "user"]


def assistant_texts(items: list[dict[str, object]]) -> list[str]:
    return [str(i["content"]) for i in items if i.get("role") == "assistant"]


async def greet_on_realtime(rig: Rig) -> str:
    answer = await rig.driver.say_and_wait(await rig.engine.speech("Hello, how are you today?"))
    assert rig.mode == "realtime" and rig.model.failovers == 0
    return answer


async def test_insufficient_quota_mid_call_the_cascade_answers_the_same_utterance(engine: Engine) -> None:
    async with Rig(engine, no_probe()) as rig:
        greeting = await greet_on_realtime(rig)
        engine.realtime_faults.quota_errors = 1
        await rig.driver.inject(await engine.speech("What is the weather like in Paris?"))
        answer = await rig.driver.answer_containing(["paris", "18"])
        assert rig.mode == "cascade" and rig.model.failovers == 1
        # the tool ran on the cascade, for the utterance the Realtime session never transcribed
        assert [c.name for c in rig.tool_calls()] == ["get_weather"]
        assert json.loads(rig.tool_calls()[0].arguments)["city"].lower() == "paris"
        # the history came along: the cascade's request had the Realtime turn before the failure
        request = rig.cascades[0].last_request
        assert request is not None
        users = user_texts(request["input"])
        assert ("hello" in users[0] or "how are you" in users[0]) and "paris" in users[-1]
        # (the greeting may come back cut by a word: the Realtime path truncates it when the next utterance
        # starts while its last partial 20 ms frame is still unplayed)
        carried = assistant_texts(request["input"])[0]
        assert carried and greeting.startswith(carried)
        # the next utterance is answered by the cascade, spoken
        heard_before = rig.port.received().duration_ms
        third = await rig.driver.say_and_wait(await engine.speech("Thank you very much."))
    assert third and rig.port.received().duration_ms > heard_before + 300
    notice = rig.notices("failover")[0]
    assert notice.detail["to"] == "cascade" and "insufficient_quota" in str(notice.detail["reason"])
    assert notice.detail["replayed_audio"] is True
    assert "One moment." in lines(rig.call, "assistant")
    assert "paris" in answer.lower()
    # the caller waited at most about a second between the failure and the first word from the cascade
    gap = rig.driver.gap_after(lambda e: isinstance(e, ModelError) and e.code == "insufficient_quota")
    assert gap < 1.5, gap


async def test_drop_mid_response_with_reconnects_refused_continues_on_the_cascade(engine: Engine) -> None:
    faults = engine.realtime_faults
    faults.drop_after_audio_deltas, faults.drops = 2, 1  # armed for the call's first connection
    async with Rig(engine, no_probe()) as rig:
        faults.refuse_connections = 50  # and no reconnect will be accepted
        await rig.driver.inject(await engine.speech("What is the weather like in London?"))
        await rig.driver.answer_containing(["london", "14"])
        assert faults.drops == 0, "the socket was dropped mid-response"
        assert rig.mode == "cascade" and rig.model.failovers == 1
        # the Realtime session had transcribed the question and run the tool before the drop; the cascade
        # finished the answer from that history
        request = rig.cascades[0].last_request
        assert request is not None
        assert "london" in user_texts(request["input"])[0]
        assert any(i.get("type") == "function_call_output" for i in request["input"])
        # a function tool still works on the cascade, and the history keeps growing
        answer = await rig.driver.say_and_wait(await engine.speech("And what about the weather in Tokyo?"))
        assert "tokyo" in answer.lower() and "25" in answer
        request = rig.cascades[0].last_request
        assert request is not None
        users = user_texts(request["input"])
        assert "london" in users[0] and "tokyo" in users[-1]
        calls = [i for i in request["input"] if i.get("type") == "function_call"]
        assert [json.loads(str(c["arguments"]))["city"].lower() for c in calls] == ["london", "tokyo"]
    assert [c.name for c in rig.tool_calls()] == ["get_weather", "get_weather"]
    notices = rig.notices("failover")
    assert len(notices) == 1 and rig.notices("disconnected")
    gap = rig.driver.gap_after(lambda e: isinstance(e, Notice) and e.kind == "disconnected")
    assert gap < 1.5, gap  # the drop, two refused reconnects, the switch and "One moment."


async def test_refused_at_start_runs_on_the_cascade_then_switches_back_at_a_turn_boundary(
    engine: Engine,
) -> None:
    engine.realtime_faults.refuse_connections = 1000
    policy = FailoverPolicy(open_timeout_s=2.0, reconnect_grace_s=1.0, probe_initial_s=0.3, probe_max_s=0.6)
    async with Rig(engine, policy) as rig:
        assert rig.mode == "cascade" and rig.model.failovers == 1
        answer = await rig.driver.say_and_wait(await engine.speech("What is the weather in Tokyo?"))
        assert "tokyo" in answer.lower() and "25" in answer
        assert [c.name for c in rig.tool_calls()] == ["get_weather"]
        await asyncio.sleep(1.0)
        assert rig.mode == "cascade"  # still refused: the probes failed, the call stays up
        engine.realtime_faults.refuse_connections = 0
        await until(lambda: rig.mode == "realtime", 10, "the switch back to realtime")
        assert rig.model.failbacks == 1 and rig.model.switches == 2
        # the new Realtime session was seeded with the cascade's turns (its replay sent them upstream)
        primary = rig.model.active
        assert isinstance(primary, RealtimeModelSession)
        replayed = [i.text.lower() for i in primary.core.conversation if i.type == "message"]
        assert any("tokyo" in t for t in replayed)
        calls = [i for i in primary.core.conversation if i.type == "function_call"]
        assert [c.name for c in calls] == ["get_weather"]
        # and it answers the next utterance (on the Realtime path now)
        last = await rig.driver.say_and_wait(await engine.speech("Thank you very much."))
        assert last
        assert rig.mode == "realtime"
        await rig.driver.quiet()
    back = rig.notices("failback")
    assert len(back) == 1 and back[0].detail["from"] == "cascade"
    assert len(rig.cascades) == 1 and len(rig.primaries) >= 3  # the first, failed probes, the live one
