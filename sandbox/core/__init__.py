"""Core: the analysis pipeline, its request/outcome types, clock and verdicts."""
