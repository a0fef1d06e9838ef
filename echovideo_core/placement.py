"""Where model weights wait and where they run.

`Placement.mode`:
- "main_device": weights stay on the execution device (fastest, most memory);
- "model_offload": weights wait on the offload device (CPU) and each model is moved to the
  execution device only while it runs, then moved back (`running_on`);
- "block_swap": like "model_offload" for the VAE, T5 and SigLIP; the DiT stays on the
  execution device except `swap_blocks` of its blocks, which wait on the offload device and
  are streamed in one at a time (block_swap.py);
- "sequential_offload": like "model_offload" for the VAE, T5 and SigLIP; the DiT's weights
  stay on the offload device and each layer visits the execution device only for its own
  forward (diffusers' leaf-level group offloading): least GPU memory, slowest;
- "cpu": everything on the CPU.

The user-facing vocabulary (`offload=` in Python, `--offload` on the command line) is
`none | model | blocks:N | sequential` (`OFFLOAD_MODES`); `placement_for` turns it into a
Placement. Every mode gives bit-identical numbers: only where weights wait changes.
Before a model is moved onto the execution device, the caller's `make_room(bytes, device)`
hook runs. A front end with its own memory manager instead puts a `ModelManager` in the
Placement (`Placement.create(..., manager=...)`): then `running_on` hands every move to it
(the ComfyUI nodes register our models with ComfyUI's model management this way, so ComfyUI
can unload them when it needs the memory). Nothing here knows about ComfyUI.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterator, Protocol

import torch

from echovideo_core.errors import InvalidInputError
from echovideo_core.validation import OFFLOAD_HELP, OFFLOAD_MODES, parse_offload  # noqa: F401 (the vocabulary lives there)

PLACEMENTS: tuple[str, ...] = ("main_device", "model_offload", "block_swap", "sequential_offload", "cpu")
OFFLOADING = ("model_offload", "block_swap", "sequential_offload")
MakeRoom = Callable[[int, torch.device], None]


class ModelManager(Protocol):
    """A front end's memory manager: `running(module, placement)` has the module on
    placement.execution_device for the block and decides where it waits afterwards."""

    def running(self, module: torch.nn.Module, placement: "Placement") -> ContextManager[None]: ...


@dataclass(frozen=True)
class Placement:
    """mode: one of PLACEMENTS; execution_device runs the math; offload_device holds idle weights;
    manager: optional front-end memory manager (see ModelManager), None = move modules here."""

    mode: str
    execution_device: torch.device
    offload_device: torch.device
    manager: ModelManager | None = field(default=None, compare=False, repr=False)
    swap_blocks: int = 0

    @classmethod
    def create(cls, mode: str, execution_device: torch.device | str, offload_device: torch.device | str = "cpu",
               manager: ModelManager | None = None, swap_blocks: int = 0) -> "Placement":
        if mode not in PLACEMENTS:
            raise InvalidInputError(f"placement must be one of {', '.join(PLACEMENTS)}; got {mode!r}")
        if mode == "block_swap" and (isinstance(swap_blocks, bool) or not isinstance(swap_blocks, int) or swap_blocks < 1):
            raise InvalidInputError(f"block swap needs a number of blocks >= 1, got {swap_blocks!r}")
        execution = torch.device("cpu") if mode == "cpu" else torch.device(execution_device)
        return cls(mode=mode, execution_device=execution, offload_device=torch.device(offload_device), manager=manager,
                   swap_blocks=swap_blocks if mode == "block_swap" else 0)

    @classmethod
    def resident(cls, device: torch.device | str) -> "Placement":
        """Everything stays where it is, on `device` (the Python pipeline's placement)."""
        device = torch.device(device)
        return cls(mode="cpu" if device.type == "cpu" else "main_device", execution_device=device, offload_device=device)

    @property
    def storage_device(self) -> torch.device:
        """Where weights sit between runs (with a manager: until it first loads them)."""
        if self.mode in OFFLOADING or self.manager is not None:
            return self.offload_device
        return self.execution_device


def placement_for(offload: str, execution_device: torch.device | str, offload_device: torch.device | str = "cpu",
                  manager: ModelManager | None = None) -> Placement:
    """The Placement of an `offload` value (OFFLOAD_MODES) on these devices."""
    mode, blocks = parse_offload(offload)
    if mode == "main_device" and torch.device(execution_device).type == "cpu":
        mode = "cpu"
    return Placement.create(mode, execution_device, offload_device, manager=manager, swap_blocks=blocks)


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of parameters and buffers (what moving the module to a device costs)."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def place_transformer(transformer: torch.nn.Module, placement: Placement) -> None:
    """Put a freshly loaded DiT where the placement keeps it between runs."""
    if placement.mode == "sequential_offload":
        transformer.enable_sequential_offload(placement.execution_device, placement.offload_device)
    elif placement.mode == "block_swap":
        from echovideo_core.block_swap import enable_block_swap

        enable_block_swap(transformer, placement.swap_blocks, placement.execution_device, placement.offload_device)
    else:
        transformer.to(placement.storage_device)


@contextmanager
def running_on(module: torch.nn.Module, placement: Placement, make_room: MakeRoom | None = None) -> Iterator[torch.nn.Module]:
    """The module on the execution device for the duration of the block.

    With "model_offload" (and "sequential_offload", for a module that is not offloaded layer
    by layer) it is moved there on entry and back to the offload device on exit (also when
    the block raises, e.g. on a user's cancel); other modes leave it in place. With a
    manager in the placement, the manager does the moving (make_room is not called).
    """
    if getattr(module, "_execution_device", None) is not None or getattr(module, "_block_swap", None) is not None:
        yield module  # layer-offloaded or block-swapped: its hooks move its weights
        return
    if placement.manager is not None:
        with placement.manager.running(module, placement):
            yield module
        return
    if placement.mode not in OFFLOADING:
        yield module
        return
    if make_room is not None:
        make_room(module_bytes(module), placement.execution_device)
    module.to(placement.execution_device)
    try:
        yield module
    finally:
        module.to(placement.offload_device)
