from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.errors import ConfigError
from voicebot.tools import Agent, load_agent


def test_loads_the_examples_by_module_and_by_file() -> None:
    agent = load_agent("examples.weather_agent:agent")
    assert isinstance(agent, Agent) and agent.name == "Weather agent"
    assert load_agent("examples/triage_agent.py:triage_agent").name == "Triage agent"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("examples.weather_agent", "expected 'package.module:attribute'"),
        (":agent", "expected 'package.module:attribute'"),
        ("no_such_package_xyz.mod:agent", "no module named 'no_such_package_xyz'"),
        ("examples.weather_agent:nope", "has no attribute 'nope'"),
        ("examples.weather_agent:get_weather", "is a Tool, not a voicebot Agent"),
        ("examples/missing.py:agent", "no such file"),
    ],
)
def test_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_agent(spec)


def test_import_errors_inside_the_module_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_agent_mod.py").write_text("import not_installed_dependency_xyz\n")
    (tmp_path / "raising_agent_mod.py").write_text("raise RuntimeError('bad config')\n")
    (tmp_path / "nested_agent_mod.py").write_text(
        "from voicebot.tools import Agent\nclass Holder:\n    main = Agent('Deep', 'x')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ConfigError, match=r"importing 'broken_agent_mod' failed.*not_installed_dependency_xyz"
    ):
        load_agent("broken_agent_mod:agent")
    with pytest.raises(ConfigError, match="RuntimeError: bad config"):
        load_agent("raising_agent_mod:agent")
    with pytest.raises(ConfigError, match="RuntimeError: bad config"):
        load_agent(f"{tmp_path / 'raising_agent_mod.py'}:agent")
    assert load_agent("nested_agent_mod:Holder.main").name == "Deep"
