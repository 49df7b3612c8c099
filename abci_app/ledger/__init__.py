"""The replicated state machine: pure, deterministic transitions over a KV store."""
