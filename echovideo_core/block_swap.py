"""Block swap: N transformer blocks wait on the offload device and visit the GPU in turn.

The other blocks, the embeddings and the IITF layers stay on the execution device. Before a
swapped block runs, its weights are copied in; after it ran, the GPU copies are dropped
(the weights are frozen, so nothing is copied back: the offload device keeps the master
copy, pinned on CUDA). Where CUDA is present the copy of the *next* swapped block starts on
a side stream as soon as the previous one is done, so it overlaps the compute of the blocks
in between; at most two swapped blocks are on the GPU at a time. Costs: GPU memory saved =
N blocks (130 MB each at full size in bf16); time = the copies that the compute does not hide.

Built on diffusers' hook registry (`ModelHook`): diffusers' own group offloading moves every
block or none, and block swap needs a chosen subset kept resident.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers.hooks.hooks import HookRegistry, ModelHook
from torch import nn

from echovideo_core.errors import InvalidInputError

HOOK_NAME = "echovideo_block_swap"


@dataclass
class _SwappedBlock:
    module: nn.Module
    stored: dict[str, torch.Tensor]  # name -> tensor on the offload device (the master copy)
    ready: torch.cuda.Event | None = None
    loaded: bool = False


@dataclass
class BlockSwap:
    """The swapped blocks of one transformer, in execution order, and where they go."""

    blocks: list[_SwappedBlock]
    execution_device: torch.device
    stream: torch.cuda.Stream | None = field(default=None)

    def _tensors(self, module: nn.Module) -> dict[str, torch.Tensor]:
        return dict(module.named_parameters()) | dict(module.named_buffers())

    def _load(self, block: _SwappedBlock) -> None:
        """Start copying `block` in (on the side stream when there is one)."""
        if block.loaded:
            return
        targets = self._tensors(block.module)
        context = torch.cuda.stream(self.stream) if self.stream is not None else _null()
        with context:
            for name, stored in block.stored.items():
                targets[name].data = stored.to(self.execution_device, non_blocking=self.stream is not None)
            if self.stream is not None:
                block.ready = torch.cuda.Event()
                block.ready.record(self.stream)
        block.loaded = True

    def enter(self, index: int) -> None:
        block = self.blocks[index]
        self._load(block)
        if block.ready is not None:
            torch.cuda.current_stream().wait_event(block.ready)
            block.ready = None

    def leave(self, index: int) -> None:
        block = self.blocks[index]
        targets = self._tensors(block.module)
        for name, stored in block.stored.items():
            targets[name].data = stored
        block.loaded = False
        if len(self.blocks) > 1:
            self._load(self.blocks[(index + 1) % len(self.blocks)])  # prefetch: overlaps the blocks in between


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _BlockSwapHook(ModelHook):
    def __init__(self, swap: BlockSwap, index: int) -> None:
        super().__init__()
        self.swap, self.index = swap, index

    def pre_forward(self, module, *args, **kwargs):
        self.swap.enter(self.index)
        return args, kwargs

    def post_forward(self, module, output):
        self.swap.leave(self.index)
        return output


def check_swap_count(count: int, num_blocks: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= num_blocks:
        raise InvalidInputError(
            f"blocks:N swaps N of the transformer's {num_blocks} blocks: N must be 1..{num_blocks}, got {count!r}")


def enable_block_swap(transformer: nn.Module, count: int, execution_device: torch.device | str,
                      offload_device: torch.device | str = "cpu") -> BlockSwap:
    """Keep the first `count` blocks of `transformer.transformer_blocks` on `offload_device`
    and everything else on `execution_device`; returns the swap state (hooks installed)."""
    blocks = list(transformer.transformer_blocks)
    check_swap_count(count, len(blocks))
    execution, offload = torch.device(execution_device), torch.device(offload_device)
    transformer.to(execution)
    cuda = execution.type == "cuda"
    swapped = []
    for block in blocks[:count]:
        block.to(offload)
        stored = {name: (t.data.pin_memory() if cuda and offload.type == "cpu" else t.data)
                  for name, t in (dict(block.named_parameters()) | dict(block.named_buffers())).items()}
        swapped.append(_SwappedBlock(module=block, stored=stored))
    swap = BlockSwap(blocks=swapped, execution_device=execution, stream=torch.cuda.Stream(execution) if cuda else None)
    for index, block in enumerate(swapped):
        HookRegistry.check_if_exists_or_initialize(block.module).register_hook(_BlockSwapHook(swap, index), HOOK_NAME)
    transformer._block_swap = swap
    return swap


def block_swap_of(transformer: nn.Module) -> BlockSwap | None:
    return getattr(transformer, "_block_swap", None)
