"""Step caches on the EchoVideo DiT: First Block Cache, MagCache, TeaCache.

Our transformer is diffusers' CogVideoXTransformer3DModel (a subclass adding the IITF
layers), and its blocks are diffusers' `CogVideoXBlock`, which diffusers' hook registry
knows. So First Block Cache and MagCache are diffusers' own (`enable_cache` with
`FirstBlockCacheConfig` / `MagCacheConfig`), unchanged; TeaCache is ours (teacache.py: not
in diffusers 0.42), written on the same hook registry. All three keep their state per
`cache_context` name, which the guidance-branch calls (branches.py) set: batched guidance
decides once per step for both branches, sequential guidance and CFG-parallel keep one
cache per branch. Both are consistent: the two branches are never mixed across steps.

Why diffusers and not cache-dit: the hooks are already installed and cover the three caches
the CLI offers (FasterCache, TaylorSeer and Pyramid Attention Broadcast are there too, not
exposed); cache-dit 1.5.3 would add a dependency whose CogVideoX parallel support patches
diffusers' `CogVideoXAttnProcessor2_0.__call__` for the whole process (every CogVideoX model
in a ComfyUI server), and its caches would need their own per-branch bookkeeping.

MagCache needs magnitude ratios calibrated for the checkpoint and step count; none are
published for CogVideoX-5B or EchoVideo, so `record_mag_ratios` measures them during an
uncached batched run (the bench does this in its baseline run) and `SpeedOptions`-level
callers pass them in. Threshold 0 keeps every block for all three caches (FBC skips only when
the first block's residual is bit-identical to the previous step's, MagCache only when the
accumulated ratio error is exactly 0, TeaCache never).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from diffusers.hooks import HookRegistry, ModelHook

from echovideo_core.acceleration.counting import transformer_blocks
from echovideo_core.acceleration.options import CacheSpec, SpeedOptionError
from echovideo_core.acceleration.teacache import apply_teacache, remove_teacache

MAG_RECORDER_HOOK = "echovideo_mag_ratio_recorder"


def require_mag_ratios(spec: CacheSpec, mag_ratios: Sequence[float] | None) -> None:
    """MagCache cannot run without ratios: one line saying where they come from."""
    if spec.kind == "magcache" and mag_ratios is None:
        raise SpeedOptionError(
            f"--cache {spec} needs magnitude ratios calibrated for this checkpoint and step count (none are "
            "published for CogVideoX-5B/EchoVideo): write them with an uncached `echovideo generate "
            "--record-mag-ratios FILE` and pass --mag-ratios FILE, or use --cache fbc:T or teacache:T")


def _diffusers_config(spec: CacheSpec, num_inference_steps: int, mag_ratios: Sequence[float] | None):
    from diffusers.hooks import FirstBlockCacheConfig, MagCacheConfig

    if spec.kind == "fbc":
        return FirstBlockCacheConfig(threshold=spec.threshold)
    require_mag_ratios(spec, mag_ratios)
    return MagCacheConfig(threshold=spec.threshold, num_inference_steps=num_inference_steps,
                          mag_ratios=torch.tensor(list(mag_ratios), dtype=torch.float32))


def enable_step_cache(transformer: torch.nn.Module, spec: CacheSpec, *, num_inference_steps: int,
                      mag_ratios: Sequence[float] | None = None) -> None:
    """Hook the cache onto the blocks; calls must then run inside `transformer.cache_context`."""
    if spec.kind == "teacache":
        apply_teacache(transformer, spec.threshold)
    elif spec.enabled:
        transformer.enable_cache(_diffusers_config(spec, num_inference_steps, mag_ratios))


def disable_step_cache(transformer: torch.nn.Module, spec: CacheSpec) -> None:
    if spec.kind == "teacache":
        remove_teacache(transformer)
    elif spec.enabled:
        transformer.disable_cache()


def reset_step_cache(transformer: torch.nn.Module) -> None:
    """Forget every branch's cached residuals: a new run must not reuse the last run's."""
    HookRegistry.check_if_exists_or_initialize(transformer).reset_stateful_hooks(recurse=True)


@contextmanager
def step_cache(transformer: torch.nn.Module, spec: CacheSpec, *, num_inference_steps: int,
               mag_ratios: Sequence[float] | None = None) -> Iterator[None]:
    """The cache on for the `with` (nothing for kind "none"), removed after."""
    if spec.kind in ("fbc", "magcache") and len(transformer_blocks(transformer)) < 2:
        raise SpeedOptionError(f"--cache {spec} needs a transformer of at least 2 blocks (it keeps the first and caches "
                               "the rest); this one has 1: use teacache or no cache")
    enable_step_cache(transformer, spec, num_inference_steps=num_inference_steps, mag_ratios=mag_ratios)
    try:
        yield
    finally:
        disable_step_cache(transformer, spec)


class _MagRatioHook(ModelHook):
    """Head: remember the stack's input; tail: the residual's magnitude ratio to the last call's."""

    def __init__(self, ratios: list[float], shared: dict, *, head: bool, tail: bool) -> None:
        super().__init__()
        self.ratios, self.shared, self.head, self.tail = ratios, shared, head, tail

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        if self.head:
            self.shared["input"] = hidden
        output = self.fn_ref.original_forward(*args, **kwargs)
        if self.tail:
            residual = (output[0] - self.shared["input"]).float()
            previous = self.shared.get("residual")
            ratio = 1.0 if previous is None else float(
                (torch.linalg.norm(residual, dim=-1) / (torch.linalg.norm(previous, dim=-1) + 1e-8)).mean())
            self.ratios.append(ratio)
            self.shared["residual"] = residual
        return output


@contextmanager
def record_mag_ratios(transformer: torch.nn.Module) -> Iterator[list[float]]:
    """MagCache's calibration (the paper's gamma_t: mean over tokens of ||r_t|| / ||r_{t-1}||,
    r the block stack's residual; 1.0 at the first step), one value per transformer call:
    run one uncached batched run inside the `with` and pass the list as `mag_ratios`.
    diffusers' calibrate mode only prints the values, hence this recorder."""
    ratios: list[float] = []
    shared: dict = {}
    blocks = transformer_blocks(transformer)
    registries = [HookRegistry.check_if_exists_or_initialize(block) for block in blocks]
    for index, registry in enumerate(registries):
        if index in (0, len(blocks) - 1):
            registry.register_hook(_MagRatioHook(ratios, shared, head=index == 0, tail=index == len(blocks) - 1),
                                   MAG_RECORDER_HOOK)
    try:
        yield ratios
    finally:
        for index, registry in enumerate(registries):
            if index in (0, len(blocks) - 1):
                registry.remove_hook(MAG_RECORDER_HOOK, recurse=False)
