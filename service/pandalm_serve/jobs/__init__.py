"""Offline judging jobs: PandaLM over files of pairs, outside the HTTP service (`ray_batch`: Ray Data and vLLM)."""
