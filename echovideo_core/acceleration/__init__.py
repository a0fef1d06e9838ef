"""Speed options for the EchoVideo DiT: step caches, regional compile, attention backends,
guidance-branch modes and multi-process runs. `accelerated` applies a `SpeedOptions` to a
transformer for one run; `bench_speed_options` measures them against a baseline."""
from echovideo_core.acceleration.apply import Acceleration, accelerated, check_speed_options
from echovideo_core.acceleration.options import (CacheSpec, SpeedOptionError, SpeedOptions, parse_attention,
                                                 parse_cache, parse_guidance_branches, parse_parallel)

__all__ = ["Acceleration", "CacheSpec", "SpeedOptionError", "SpeedOptions", "accelerated", "check_speed_options",
           "parse_attention", "parse_cache", "parse_guidance_branches", "parse_parallel"]
