"""The Realtime client: a pure protocol core (session.py, conversation.py, wire.py, errors.py, playback.py)
and its WebSocket adapter (client.py). Import the adapter from ``voicebot.realtime.client`` so that the pure
modules stay free of I/O imports."""
