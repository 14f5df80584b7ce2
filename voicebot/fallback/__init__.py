"""The non-realtime path: a cascade ModelSession (transcriptions → responses → speech), automatic failover
from the Realtime API to it and back, and post-call tasks (summaries, transcript export).

See docs/fallback.md.
"""
