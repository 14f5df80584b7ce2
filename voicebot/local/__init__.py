"""The embedded local engine: an offline server speaking the OpenAI Realtime, Responses and audio protocols."""
