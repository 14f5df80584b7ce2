"""A restaurant booking agent: a pydantic model as the tool's parameters, validation, and a transfer.

Run it:  voicebot serve --agent examples.restaurant_agent:agent
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Annotated

from pydantic import BaseModel, Field

from voicebot.tools import Agent, ToolContext, ToolError, tool
from voicebot.tools.builtin import end_call, get_current_time, transfer_call_tool

OPENING, CLOSING = dt.time(12, 0), dt.time(22, 0)
_booking_numbers = itertools.count(1001)


class Booking(BaseModel):
    """A table reservation."""

    party_size: Annotated[int, Field(ge=1, le=12, description="Number of guests (1 to 12).")]
    date: dt.date = Field(description="Day of the booking, YYYY-MM-DD.")
    time: dt.time = Field(description="Arrival time, HH:MM in 24-hour format.")
    name: Annotated[str, Field(min_length=1, max_length=80, description="Name for the reservation.")]
    notes: str | None = Field(None, description="Allergies, high chair, and so on.")


@tool(filler="Let me check the book for you.")
async def book_table(booking: Booking, ctx: ToolContext) -> dict[str, object]:
    """Book a table once you know the party size, date, time and name. Confirm the details first."""
    if not OPENING <= booking.time <= CLOSING:
        raise ToolError(f"we take bookings from {OPENING:%H:%M} to {CLOSING:%H:%M}; ask for another time")
    if booking.date < dt.date.today():
        raise ToolError("that date is in the past; ask for another date")
    number = next(_booking_numbers)
    return {
        "confirmed": True,
        "booking_number": number,
        "summary": f"{booking.party_size} people on {booking.date:%A %d %B} at {booking.time:%H:%M}, "
        f"under {booking.name}",
        "caller": ctx.caller,
    }


transfer_call = transfer_call_tool(
    {"manager": "sip:manager@restaurant.example", "kitchen": "sip:kitchen@restaurant.example"},
    aliases={"chef": "kitchen"},
)

agent = Agent(
    name="Restaurant host",
    instructions=(
        "You answer the phone for a small restaurant, open 12:00 to 22:00. Help the caller book a table: "
        "collect party size, date, time and name, repeat them back, then call book_table and read out the "
        "booking number. Use get_current_time to resolve words like 'tomorrow'. For complaints, transfer to "
        "the manager. Keep every answer short; it is spoken."
    ),
    tools=[book_table, get_current_time, transfer_call, end_call],
)
