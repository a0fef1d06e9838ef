"""Regional torch.compile: each repeated block's forward compiled, the rest eager.

The 42 blocks share one code path and one input shape, so Dynamo compiles the block once
(later blocks reuse the graph) and the warm-up costs one block's compilation instead of the
whole model's (the recipe diffusers' `compile_repeated_blocks` follows; our parent class
declares no `_repeated_blocks`, so the blocks are named here). Only the block's own
`forward` is compiled (a hook registered before any cache or counter hook): the caches'
Python decisions (`.item()`, per-branch state) stay eager and cause no graph breaks.

The first call after `compile_blocks` pays the compilation (the warm-up, which the bench
reports separately from the steady time per step). Compiled kernels fuse and reorder float
operations, so results match eager to float32 rounding, not bit for bit.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from typing import Iterator

import torch
from diffusers.hooks import HookRegistry, ModelHook

from echovideo_core.acceleration.counting import transformer_blocks
from echovideo_core.acceleration.options import SpeedOptionError

COMPILE_HOOK = "echovideo_regional_compile"


def check_compile(device: torch.device | str) -> None:
    """On a CPU, inductor writes C++ and needs a compiler: say so before any model loads."""
    if torch.device(device).type == "cpu" and not any(shutil.which(name) for name in ("c++", "g++", "clang++")):
        raise SpeedOptionError("--compile on a CPU needs a C++ compiler (g++ or clang++) on PATH; install one "
                               "or leave out --compile")


class _CompiledForward(ModelHook):
    """Runs the compiled version of the forward it wraps (a diffusers hook, so it comes off
    cleanly whatever other hooks were added after it)."""

    def __init__(self, compile_kwargs: dict) -> None:
        super().__init__()
        self.compile_kwargs = compile_kwargs
        self.compiled = None

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        if self.compiled is None:
            self.compiled = torch.compile(self.fn_ref.original_forward, **self.compile_kwargs)
        return self.compiled(*args, **kwargs)


def compile_blocks(transformer: torch.nn.Module, **compile_kwargs) -> None:
    """Compile each block's forward (lazily, at its first call)."""
    for block in transformer_blocks(transformer):
        HookRegistry.check_if_exists_or_initialize(block).register_hook(_CompiledForward(compile_kwargs), COMPILE_HOOK)


def uncompile_blocks(transformer: torch.nn.Module) -> None:
    """Back to the eager forward."""
    for block in transformer_blocks(transformer):
        HookRegistry.check_if_exists_or_initialize(block).remove_hook(COMPILE_HOOK, recurse=False)


@contextmanager
def compiled_blocks(transformer: torch.nn.Module, enabled: bool = True, **compile_kwargs) -> Iterator[None]:
    if not enabled:
        yield
        return
    compile_blocks(transformer, **compile_kwargs)
    try:
        yield
    finally:
        uncompile_blocks(transformer)
