"""``voicebot doctor``: what it reports must match what is really installed, and its exit code must say
whether something required is broken. It runs in-process through ``voicebot.cli.main``."""

from __future__ import annotations

import re
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from voicebot.cli import DOCTOR_PACKAGES, DOCTOR_TOOLS, TIER_NAMES, build_parser, main
from voicebot.local.speech import describe_available

SECRET = "sk-doctor-must-never-print-this-0123456789"


@pytest.fixture(autouse=True)
def _no_upstream_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "VOICEBOT_OPENAI_API_KEY", "VOICEBOT_OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for field in ("RULES_PATH", "RECORD_DIR", "REPLAY_PATH", "STT", "TTS", "VAD", "TOKEN"):
        monkeypatch.delenv(f"VOICEBOT_LOCAL_{field}", raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["doctor", *args])
    return code, capsys.readouterr().out


def test_reports_installed_versions_tiers_upstream_and_tools(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--port", "8123")
    assert code == 0, out
    for dist, _module, _required in DOCTOR_PACKAGES:
        try:
            expected = metadata.version(dist)
        except metadata.PackageNotFoundError:
            expected = "not installed"
        assert re.search(rf"^  {re.escape(dist)} +{re.escape(expected)}$", out, re.M), dist
    available = describe_available()
    for role, tiers in available.items():
        line = f"  {role}: {', '.join(tiers) or 'none'} → {tiers[0] if tiers else 'none'} "
        assert line in out, role
    assert "upstream: the local engine at http://127.0.0.1:8123/v1" in out
    for tool in DOCTOR_TOOLS:
        assert re.search(rf"^  {tool} +{re.escape(shutil.which(tool) or 'not found')}$", out, re.M)
    assert out.rstrip().endswith("doctor: OK")


def test_openai_upstream_shows_the_url_but_never_the_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    code, out = run(capsys)
    assert code == 0, out
    assert "upstream: OpenAI at http://127.0.0.1:9/v1 (realtime ws://127.0.0.1:9/v1)" in out
    assert SECRET not in out and SECRET[:12] not in out


@pytest.mark.parametrize(
    ("vad", "stt", "tts"), [("energy", "pocketsphinx", "espeak"), ("webrtc", "whisper", "piper")]
)
def test_explicit_tiers_are_the_chosen_ones(
    capsys: pytest.CaptureFixture[str], vad: str, stt: str, tts: str
) -> None:
    code, out = run(capsys, "--vad", vad, "--stt", stt, "--tts", tts)
    available = describe_available()
    broken = 0
    for role, wanted in (("vad", vad), ("stt", stt), ("tts", tts)):
        name = TIER_NAMES[role][wanted]
        if name in available[role]:
            assert f"→ {name} (VOICEBOT_LOCAL_{role.upper()}={wanted})" in out
        else:  # a tier that cannot load on this machine is a problem for the local engine
            assert f"no {role.upper()} tier can load for local_{role}={wanted}" in out
            broken += 1
    assert code == (1 if broken else 0)


def test_rules_file_is_checked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = tmp_path / "rules.toml"
    good.write_text('[[rules]]\npattern = "ping"\nreply = "pong"\n\n[[rules]]\npattern = "a"\nreply = "b"\n')
    code, out = run(capsys, "--rules", str(good))
    assert code == 0 and f"brain rules: 2 from {good}" in out

    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\npattern = "ping"\n')  # neither reply nor tool
    code, out = run(capsys, "--rules", str(bad))
    assert code == 1
    assert f"brain rules file {bad} does not load: rule 0 needs exactly one of 'reply' or 'tool'" in out
    assert "doctor: 1 problem(s)" in out


def test_missing_replay_file_is_a_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out = run(
        capsys, "--replay", str(tmp_path / "missing.jsonl"), "--record-dir", str(tmp_path / "rec")
    )
    assert code == 1
    assert f"replay file {tmp_path / 'missing.jsonl'} does not exist" in out
    assert f"recording Realtime sessions to {tmp_path / 'rec'}" in out


def test_engine_flags_reach_the_settings_of_serve_and_local() -> None:
    for command in ("serve", "local"):
        args = build_parser().parse_args(
            [command, "--rules", "r.toml", "--record-dir", "rec", "--replay", "x.jsonl", "--stt", "whisper"]
        )
        assert (args.local_rules_path, args.local_record_dir, args.local_replay_path) == (
            "r.toml",
            "rec",
            "x.jsonl",
        )
        assert (args.local_stt, args.local_tts, args.local_vad) == ("whisper", None, None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["local", "--stt", "kaldi"])


@pytest.mark.slow
def test_load_creates_the_stack_and_times_a_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--load")
    assert code == 0, out
    available = describe_available()
    for role in ("vad", "stt", "tts"):
        match = re.search(rf"^  {role}: (.+) \(loaded in (\d+\.\d\d) s\)$", out, re.M)
        assert match is not None, role
        assert match.group(1).split()[0].startswith(available[role][0].split("-")[0])
    assert re.search(r"first audio after \d+ ms", out)
    heard = re.search(r"stt: heard '(.*)' in \d+ ms", out)
    assert heard is not None and "hear me" in heard.group(1).lower()
