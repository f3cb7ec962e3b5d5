"""PandaLM judging service: PandaLM on vLLM behind /compare and /batch."""

from pandalm_client import __version__

__all__ = ["__version__"]
