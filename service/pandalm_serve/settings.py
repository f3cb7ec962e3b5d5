"""Every setting of the service, in one class. Each is a `--flag` of `pandalm-serve` and a `PANDALM_<NAME>` variable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PANDALM_7B = "WeOpenML/PandaLM-7B-v1"
# The client's and the `pandalm` command's variables: not the server's, and not a misspelling.
CLIENT_VARIABLES = frozenset({"PANDALM_URL", "PANDALM_API_KEY"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PANDALM_", extra="forbid")

    # --- server
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="`text`, or `json`: one object a line. Every line names its request's id."
    )
    api_keys_file: Path | None = Field(
        None,
        description="A file of API keys, one `name key` (or `name sha256:<hex>`) a line, reloaded when it "
        "changes. With it, every endpoint but /healthz and /readyz needs `Authorization: Bearer <key>`.",
    )
    allowed_hosts: str = Field(
        "auto",
        description="`Host` names answered to, comma-separated (ports aside), or `*` for any. `auto`: loopback "
        "names only when listening on loopback without API keys (against DNS rebinding), else any.",
    )
    protect_metrics: bool = Field(False, description="With API keys, require one for /metrics too.")
    metrics_key_label: Literal["name", "hashed", "dropped"] = Field(
        "name",
        description="What labels a key in /metrics: its `name`, a `hashed` pseudonym of the key (stable, not "
        "the name), or nothing (`dropped`).",
    )
    ui: bool = Field(True, description="Serve the playground page at /.")

    # --- judges
    judge: list[str] = Field(
        default_factory=list,
        description="A judge, `NAME=FAMILY:MODEL` (repeatable; the first is the default): FAMILY is pandalm, "
        "prometheus2, judgelm or mtbench; MODEL a folder or hub name, `demo` (that family's demo judge) or "
        "`remote:URL` (an OpenAI-compatible server). Without --judge and --judges-file: one PandaLM judge from "
        "--model and --engine. In the environment, a JSON list.",
    )
    judges_file: Path | None = Field(
        None,
        description="A TOML file of judges (`[[judges]]` tables: name, family, model, and any engine or decoding "
        "setting of that judge's own); after those of --judge.",
    )

    # --- engine and model
    engine: Literal["vllm", "remote"] = Field(
        "vllm", description="`vllm`: load the model in this process; `remote`: call an OpenAI-compatible server."
    )
    model: str | None = Field(
        None,
        description=f"Model folder or hub name. Default: {PANDALM_7B} on a CUDA machine, else the tiny demo judge.",
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "pandalm-serve", description="Where the demo judge is built on first use."
    )
    revision: str | None = Field(
        None,
        description="The model's revision on the hub (a branch, tag or commit); e.g. refs/pr/1 for PandaLM-7B's "
        "safetensors weights.",
    )
    tokenizer: str | None = Field(
        None,
        description="PandaLM's tokenizer (a folder or hub name). Default: the model's own. With the remote engine, "
        "it makes prompts PandaLM's exact token ids.",
    )
    bos_token: str | None = Field(
        "</s>",
        description="Token every prompt starts with. PandaLM was trained with `</s>` in place of `<s>`; "
        "empty: let the tokenizer add its own.",
    )

    # --- vLLM engine
    dtype: str = Field("auto", description="Weights dtype for vLLM (auto, bfloat16, float16, float32).")
    max_model_len: int = Field(2048, ge=64, description="Context length (PandaLM-7B: 2048).")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs to shard the model over.")
    data_parallel_size: int = Field(
        1, ge=1, description="Engines (one per GPU, each a whole model) that vLLM balances the pairs between."
    )
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Fraction of GPU memory vLLM may use.")
    kv_cache_gib: float | None = Field(
        None, gt=0, description="KV cache size in GiB; default on a CPU: 1, on a GPU: from gpu_memory_utilization."
    )
    enable_prefix_caching: bool = Field(True, description="Reuse the KV cache of shared prompt prefixes.")
    batch_invariant: bool = Field(
        False,
        description="vLLM's batch-invariant mode: a verdict does not depend on what else is in the batch "
        "(slower; needs a GPU that supports it).",
    )

    # --- remote engine
    remote_url: str | None = Field(None, description="Base URL of an OpenAI-compatible server, e.g. http://gpu1:8000.")
    remote_model: str | None = Field(
        None, description="Model name to send to the remote server; default: --model, else the server's first model."
    )
    remote_prompt_format: Literal["auto", "token_ids", "text"] = Field(
        "auto",
        description="How prompts reach the remote server. `token_ids`: PandaLM's exact ids (needs the tokenizer; "
        "vLLM servers); `text`: the server tokenizes; `auto`: token ids when the tokenizer loads, else text.",
    )
    remote_api_key: SecretStr | None = Field(None, description="Bearer token for the remote server.")
    remote_timeout_s: float = Field(300.0, gt=0, description="Timeout of one remote request, in seconds.")
    remote_max_connections: int = Field(
        512,
        ge=1,
        description="Most requests open to the remote server at once: keep it at least twice "
        "--max-items-in-flight (a swapped pair is two requests), or it, not the server, caps the server's batch.",
    )
    remote_max_retries: int = Field(4, ge=0, description="Retries on 429, 5xx and connection errors.")

    # --- decoding
    preset: Literal["greedy", "beam"] = Field("greedy", description="Default decoding preset.")
    max_new_tokens: int = Field(512, ge=1, description="Default and largest number of generated tokens.")
    repetition_penalty: float = Field(1.2, gt=0, description="Repetition penalty of the greedy preset.")
    beam_width: int = Field(4, ge=1, description="Beams of the beam preset (PandaLM's reference: 4).")
    ignore_eos: bool = Field(
        False,
        description="For benchmarks only: always generate max_new_tokens tokens, past the end of sequence, so "
        "that every compared system does the same work. Verdicts stay parseable only with a judge that stops.",
    )
    truncate: bool = Field(False, description="Default of the `truncate` option.")
    mode: Literal["full", "verdict"] = Field("full", description="Default of the `mode` option.")
    swap: bool = Field(False, description="Default of the `swap` option (judge both orders).")
    cache: bool = Field(True, description="Default of the `cache` option (give remembered verdicts again).")
    neutralize_headers: bool = Field(False, description="Default of the `neutralize_headers` option.")

    # --- judge health
    swap_sample_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of the pairs judged in one order that are judged again, swapped, in the background (not "
        "in the response, nor the caller's latency), for the swap-flip rate of pandalm_quality_*.",
    )
    canary: str | None = Field(
        None,
        description="A labelled set judged in the background whenever no pair is waiting: `builtin` (30 items of "
        "PandaLM's test set with PandaLM-7B's recorded verdicts) or a file in the test set's format. Exports "
        "pandalm_canary_agreement and pandalm_canary_changed_ratio per judge.",
    )
    canary_interval_s: float = Field(3600.0, gt=0, description="Seconds between the end of a canary run and the next.")

    # --- verdict cache
    cache_backend: Literal["sqlite", "redis", "memory", "off"] = Field(
        "sqlite",
        description="Where verdicts are remembered: a SQLite file (one host, several processes), Redis (several "
        "replicas), memory (this process only), or off.",
    )
    cache_scope: Literal["shared", "per-key"] = Field(
        "shared",
        description="`shared`: every key is given the generations any key produced (one team); `per-key`: a key "
        "is given only its own, so that no key learns from a quick answer what another sent (needs API keys).",
    )
    cache_namespace: str = Field(
        "",
        max_length=200,
        description="A name of this service's share of a cache (a SQLite file or Redis) other services use too: "
        "services with different namespaces never give each other's generations.",
    )
    cache_path: Path | None = Field(None, description="The SQLite file; default: cache_dir/verdicts.sqlite.")
    cache_max_entries: int = Field(
        1_000_000, ge=1, description="Generations kept in SQLite or memory, least recently used out first."
    )
    redis_url: str | None = Field(None, description="Redis for cache_backend=redis, e.g. redis://cache:6379/0.")
    cache_ttl_s: int | None = Field(None, ge=1, description="Expire Redis entries after this many seconds.")

    # --- limits
    max_body_bytes: int = Field(32 * 2**20, ge=1024, description="Largest request body, in bytes.")
    max_header_bytes: int = Field(
        32 * 2**10, ge=1024, description="Largest request head (request line and headers), in bytes; past it, 431."
    )
    body_timeout_s: float = Field(
        60.0, gt=0, description="Most time a request's body may take to arrive after its head; then 408."
    )
    max_header_fields: int = Field(100, ge=8, description="Most header fields in one request; past them, 431.")
    header_timeout_s: float = Field(
        10.0, gt=0, description="Most time a request's head may take to arrive; then the connection is closed."
    )
    max_field_chars: int = Field(
        100_000, ge=1, description="Most characters in an instruction, input or response (before truncation)."
    )
    max_batch_items: int = Field(1000, ge=1, description="Largest number of items in one /batch.")
    max_items_in_flight: int = Field(
        256,
        ge=1,
        description="Pairs judged at once (vLLM batches them); more wait their turn. With swap a pair is two "
        "generations.",
    )
    max_items_waiting: int = Field(
        4096, ge=1, description="Pairs that may wait for their turn; past it, new requests get 429."
    )
    item_timeout_s: float = Field(
        300.0, gt=0, description="Most time to judge one pair once admitted, remote retries included."
    )
    exit_on_engine_death: bool = Field(
        True, description="Exit when the vLLM engine dies, so that a supervisor restarts the service."
    )
    shutdown_grace_s: float = Field(
        60.0, ge=0, description="On SIGTERM, time the pairs in flight get to finish before they are cut."
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        # A misspelt variable would otherwise be ignored without a word (and serve the demo judge).
        unknown = sorted(
            name
            for name in os.environ
            if name.startswith("PANDALM_")
            and name not in CLIENT_VARIABLES
            and name.removeprefix("PANDALM_").lower() not in type(self).model_fields
        )
        if unknown:
            raise ValueError(f"unknown setting(s) in the environment: {', '.join(unknown)}; see pandalm-serve --help")
        if self.engine == "remote" and not self.remote_url:
            raise ValueError("engine 'remote' needs --remote-url (PANDALM_REMOTE_URL)")
        if self.cache_backend == "redis" and not self.redis_url:
            raise ValueError("cache_backend 'redis' needs --redis-url (PANDALM_REDIS_URL)")
        if self.cache_scope == "per-key" and self.api_keys_file is None:
            raise ValueError("cache_scope 'per-key' needs API keys (--api-keys-file): without them all are one caller")
        if self.engine == "remote" and self.preset == "beam":
            raise ValueError("the remote engine has no beam search: use --preset greedy, or --engine vllm")
        if self.bos_token == "":
            self.bos_token = None
        return self
