"""A weather agent with made-up data: the smallest useful voicebot agent.

Run it:  voicebot serve --agent examples.weather_agent:agent   (from the repository root)
"""

from __future__ import annotations

import zlib
from typing import Literal

from voicebot.tools import Agent, ToolError, tool
from voicebot.tools.builtin import end_call, get_current_time

_CONDITIONS = ["sunny", "partly cloudy", "overcast", "light rain", "windy", "foggy"]
_KNOWN = {
    "paris": ("Paris", 18, "partly cloudy"),
    "london": ("London", 14, "light rain"),
    "new york": ("New York", 22, "sunny"),
    "tokyo": ("Tokyo", 25, "overcast"),
    "madrid": ("Madrid", 29, "sunny"),
}


@tool
async def get_weather(city: str, units: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, object]:
    """Get the current weather for a city (demo data, not a real forecast).

    Args:
        city: The city name, for example "Paris" or "New York".
        units: Temperature unit to answer in.
    """
    key = " ".join(city.lower().split())
    if not key:
        raise ToolError("which city? the city name was empty")
    if key in _KNOWN:
        name, celsius, condition = _KNOWN[key]
    else:  # a stable made-up answer for any other city
        seed = zlib.crc32(key.encode())
        name, celsius, condition = city.strip().title(), 5 + seed % 25, _CONDITIONS[seed % len(_CONDITIONS)]
    temperature = celsius if units == "celsius" else round(celsius * 9 / 5 + 32)
    return {"city": name, "temperature": temperature, "units": units, "conditions": condition}


agent = Agent(
    name="Weather agent",
    instructions=(
        "You are a friendly weather line. Answer in one or two short spoken sentences. "
        "Use get_weather for any question about the weather; say the numbers naturally. "
        "When the caller says goodbye, say goodbye and call end_call."
    ),
    tools=[get_weather, get_current_time, end_call],
)
