"""Browser calls over WebRTC (adapter): signalling checks, the peer's AudioPort, paced tracks, page events."""
