"""Options in layers: an item's own override its batch's, which override the server's settings."""

from __future__ import annotations

from dataclasses import dataclass

from pandalm_client.models import JudgeOptions, Mode, Preset

from ..errors import InvalidOptionError
from ..settings import Settings


@dataclass(frozen=True, slots=True)
class ResolvedOptions:
    preset: Preset
    max_new_tokens: int
    truncate: bool
    mode: Mode
    swap: bool
    neutralize_headers: bool


def resolve_options(settings: Settings, presets: frozenset[Preset], *layers: JudgeOptions | None) -> ResolvedOptions:
    """Merge option layers, most general first, onto the server's defaults, and check the result."""
    merged: dict[str, object] = {
        "preset": settings.preset,
        "max_new_tokens": settings.max_new_tokens,
        "truncate": settings.truncate,
        "mode": settings.mode,
        "swap": settings.swap,
        "neutralize_headers": settings.neutralize_headers,
    }
    for layer in layers:
        if layer is not None:
            merged.update(layer.model_dump(exclude_none=True))
    resolved = ResolvedOptions(**merged)  # type: ignore[arg-type]
    if resolved.preset not in presets:
        raise InvalidOptionError(
            f"preset {resolved.preset!r} is not available on this engine; use one of {sorted(presets)}",
            details={"option": "preset", "value": resolved.preset},
        )
    if resolved.max_new_tokens > settings.max_new_tokens:
        raise InvalidOptionError(
            f"max_new_tokens {resolved.max_new_tokens} exceeds this server's limit of {settings.max_new_tokens}",
            details={"option": "max_new_tokens", "value": resolved.max_new_tokens, "limit": settings.max_new_tokens},
        )
    return resolved
