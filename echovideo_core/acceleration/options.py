"""The speed options as one frozen value, and the parsers of their command-line spellings.

`--cache none|fbc:T|magcache:T|teacache:T`, `--compile`, `--attention sdpa|sage|flash`,
`--guidance-branches batched|sequential`, `--parallel cfg|ulysses|cfg+ulysses`. The CLI,
the bench and the nodes build a `SpeedOptions` with these parsers, so every front end
accepts the same spellings and rejects the same mistakes with the same one-line message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from echovideo_core.errors import InvalidInputError

CacheKind = Literal["none", "fbc", "magcache", "teacache"]
CACHE_KINDS: tuple[str, ...] = ("none", "fbc", "magcache", "teacache")
DEFAULT_THRESHOLDS: dict[str, float] = {
    "fbc": 0.05,  # diffusers' FirstBlockCacheConfig default
    "magcache": 0.06,  # diffusers' MagCacheConfig default (the MagCache paper's)
    "teacache": 0.15,  # the threshold of the ConsisID TeaCache timing the issue quotes
}
ATTENTION_BACKENDS: tuple[str, ...] = ("sdpa", "sage", "flash")
GUIDANCE_BRANCHES: tuple[str, ...] = ("batched", "sequential")
PARALLEL_MODES: tuple[str, ...] = ("none", "cfg", "ulysses", "cfg+ulysses")


class SpeedOptionError(InvalidInputError):
    """A speed option is misspelt, out of range, or cannot run here; the message says which."""


@dataclass(frozen=True)
class CacheSpec:
    """kind: which step cache; threshold: its skip threshold (0 never skips: exact output)."""

    kind: CacheKind = "none"
    threshold: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    def __str__(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}:{self.threshold:g}"


@dataclass(frozen=True)
class SpeedOptions:
    """Every speed knob of one run; the default is the plain run (no cache, eager, sdpa,
    batched branches, one process)."""

    cache: CacheSpec = CacheSpec()
    compile: bool = False
    attention: str = "sdpa"
    guidance_branches: str = "batched"
    parallel: str = "none"

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_BACKENDS:
            raise SpeedOptionError(f"--attention must be one of {', '.join(ATTENTION_BACKENDS)}, got {self.attention!r}")
        if self.guidance_branches not in GUIDANCE_BRANCHES:
            raise SpeedOptionError(
                f"--guidance-branches must be one of {', '.join(GUIDANCE_BRANCHES)}, got {self.guidance_branches!r}")
        if self.parallel not in PARALLEL_MODES:
            raise SpeedOptionError(f"--parallel must be one of {', '.join(PARALLEL_MODES[1:])}, got {self.parallel!r}")
        if "ulysses" in self.parallel and self.cache.enabled:
            raise SpeedOptionError(
                f"--cache {self.cache} cannot run with --parallel {self.parallel}: each rank would decide its skips "
                "on its own part of the sequence; use --parallel cfg with a cache, or --cache none")

    def label(self) -> str:
        """A short name for reports: only the knobs that differ from the plain run."""
        parts = [f"cache={self.cache}"] if self.cache.enabled else []
        parts += ["compile"] if self.compile else []
        parts += [f"attention={self.attention}"] if self.attention != "sdpa" else []
        parts += [f"guidance_branches={self.guidance_branches}"] if self.guidance_branches != "batched" else []
        parts += [f"parallel={self.parallel}"] if self.parallel != "none" else []
        return ",".join(parts) or "baseline"


def parse_cache(text: str) -> CacheSpec:
    """'none' | 'fbc' | 'fbc:0.05' | 'magcache:0.06' | 'teacache:0.15' -> CacheSpec.

    A kind without a threshold takes its default (DEFAULT_THRESHOLDS)."""
    kind, _, value = text.strip().lower().partition(":")
    if kind not in CACHE_KINDS:
        raise SpeedOptionError(f"--cache must be none, fbc:T, magcache:T or teacache:T, got {text!r}")
    if kind == "none":
        if value:
            raise SpeedOptionError(f"--cache none takes no threshold, got {text!r}")
        return CacheSpec()
    if not value:
        return CacheSpec(kind, DEFAULT_THRESHOLDS[kind])  # type: ignore[arg-type]
    try:
        threshold = float(value)
    except ValueError:
        raise SpeedOptionError(f"--cache {kind}:T needs a number T >= 0, got {text!r}") from None
    if not threshold >= 0 or threshold == float("inf"):
        raise SpeedOptionError(f"--cache {kind}:T needs a finite number T >= 0, got {text!r}")
    return CacheSpec(kind, threshold)  # type: ignore[arg-type]


def parse_choice(text: str, choices: tuple[str, ...], flag: str) -> str:
    """One of `choices` (case-insensitive), else a SpeedOptionError naming `flag`."""
    value = text.strip().lower()
    if value not in choices:
        raise SpeedOptionError(f"{flag} must be one of {', '.join(choices)}, got {text!r}")
    return value


def parse_attention(text: str) -> str:
    return parse_choice(text, ATTENTION_BACKENDS, "--attention")


def parse_guidance_branches(text: str) -> str:
    return parse_choice(text, GUIDANCE_BRANCHES, "--guidance-branches")


def parse_parallel(text: str) -> str:
    return parse_choice(text, PARALLEL_MODES, "--parallel")


def node_speed_options(cache: str, threshold: float, guidance_branches: str, attention: str, compile: bool) -> SpeedOptions:
    """The sampler node's speed widgets as SpeedOptions (a negative threshold: the cache's default)."""
    spec = parse_cache(cache if cache == "none" or threshold < 0 else f"{cache}:{threshold}")
    return SpeedOptions(cache=spec, compile=compile, attention=attention, guidance_branches=guidance_branches)
