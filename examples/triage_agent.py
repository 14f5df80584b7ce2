"""Language triage, as in the OpenAI Agents SDK docs: a triage agent hands the call to a Spanish or an
English agent, and both can hand back to triage if the caller switches language.

Run it:  voicebot serve --agent examples.triage_agent:triage_agent

Handoff tools are generated: the triage agent gets ``transfer_to_spanish_agent`` and
``transfer_to_english_agent``. Calling one switches the live session's instructions and tools (and voice,
where the upstream still allows a voice change).
"""

from __future__ import annotations

from voicebot.tools import Agent
from voicebot.tools.builtin import end_call, get_current_time

spanish_agent = Agent(
    name="Spanish agent",
    instructions="You only speak Spanish. Be brief and polite; your answers are spoken aloud.",
    tools=[get_current_time, end_call],
    handoff_description="Speaks Spanish with callers who speak Spanish.",
)

english_agent = Agent(
    name="English agent",
    instructions="You only speak English. Be brief and polite; your answers are spoken aloud.",
    tools=[get_current_time, end_call],
    handoff_description="Speaks English with callers who speak English.",
)

triage_agent = Agent(
    name="Triage agent",
    instructions=(
        "Greet the caller in English and Spanish. Then hand off to the appropriate agent based on the "
        "language of the caller's request. Do not answer questions yourself."
    ),
    handoffs=[spanish_agent, english_agent],
)

for _agent in (spanish_agent, english_agent):
    _agent.handoffs.append(triage_agent)
triage_agent.handoff_description = "Finds the right language when the caller switches language."

agent = triage_agent
