"""Speed options for the EchoVideo DiT: step caches, regional compile, attention backends,
guidance-branch modes and multi-process runs. `accelerated` applies a `SpeedOptions` to a
transformer for one run; `echovideo bench` (echovideo_core.bench) measures them against the
release's way.

The names are imported when first used, so that the CLI can declare the speed flags
(`acceleration.cli_options`, which needs only `options`) without importing torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from echovideo_core.lazy_exports import lazy_getattr

_EXPORTS: dict[str, str] = {
    "Acceleration": "echovideo_core.acceleration.apply",
    "accelerated": "echovideo_core.acceleration.apply",
    "check_speed_options": "echovideo_core.acceleration.apply",
    "CacheSpec": "echovideo_core.acceleration.options",
    "SpeedOptionError": "echovideo_core.acceleration.options",
    "SpeedOptions": "echovideo_core.acceleration.options",
    "parse_attention": "echovideo_core.acceleration.options",
    "parse_cache": "echovideo_core.acceleration.options",
    "parse_guidance_branches": "echovideo_core.acceleration.options",
    "parse_parallel": "echovideo_core.acceleration.options",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from echovideo_core.acceleration.apply import Acceleration, accelerated, check_speed_options
    from echovideo_core.acceleration.options import (CacheSpec, SpeedOptionError, SpeedOptions, parse_attention,
                                                     parse_cache, parse_guidance_branches, parse_parallel)


__getattr__ = lazy_getattr(globals(), _EXPORTS)
