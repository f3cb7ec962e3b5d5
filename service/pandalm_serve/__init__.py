"""PandaLM judging service: PandaLM on vLLM behind /compare and /batch."""

__version__ = "0.1.0"
