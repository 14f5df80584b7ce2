"""The local engine's emulation of the OpenAI Realtime API (GA) over WebSocket.

``protocol`` is the pure core (one connection's session, conversation, input buffer, turn detection and
responses, with time passed in); ``route`` is the aiohttp adapter that drives it and runs the speech models
off the event loop. See docs/local-engine.md.
"""
