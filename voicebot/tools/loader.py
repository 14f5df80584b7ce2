"""``load_agent("package.module:attribute")``: find the user's Agent for ``voicebot serve --agent``.

The module part may also be a file path ending in ``.py`` (``examples/weather_agent.py:agent``). The current
directory is put on ``sys.path`` first (as ``python -m`` would), so a project's own modules import without
installing them. The attribute may be dotted (``mod:agents.main``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from voicebot.errors import ConfigError
from voicebot.tools.agents import Agent


def load_agent(spec: str) -> Agent:
    """Import ``module:attribute`` and return the Agent it names. Raises ConfigError with the reason."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name.strip() or not attribute.strip():
        raise ConfigError(f"agent {spec!r}: expected 'package.module:attribute', e.g. 'myapp.agents:agent'")
    module = _import(module_name.strip(), spec)
    value: object = module
    for part in attribute.strip().split("."):
        if not hasattr(value, part):
            raise ConfigError(f"agent {spec!r}: module {module.__name__!r} has no attribute {attribute!r}")
        value = getattr(value, part)
    if not isinstance(value, Agent):
        raise ConfigError(
            f"agent {spec!r}: {attribute!r} is a {type(value).__name__}, not a voicebot Agent "
            "(create it with voicebot.Agent(name, instructions, tools=[...]))"
        )
    return value


def _import(module_name: str, spec: str) -> ModuleType:
    if module_name.endswith(".py"):
        return _import_file(Path(module_name), spec)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ConfigError(
                f"agent {spec!r}: no module named {exc.name!r} (looked in {cwd} and sys.path)"
            ) from exc
        raise ConfigError(f"agent {spec!r}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise ConfigError(
            f"agent {spec!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _import_file(path: Path, spec: str) -> ModuleType:
    if not path.is_file():
        raise ConfigError(f"agent {spec!r}: no such file {str(path)!r}")
    name = f"voicebot_user_{path.stem}"
    file_spec = importlib.util.spec_from_file_location(name, path)
    if file_spec is None or file_spec.loader is None:
        raise ConfigError(f"agent {spec!r}: cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[name] = module
    try:
        file_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(
            f"agent {spec!r}: running {str(path)!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return module
