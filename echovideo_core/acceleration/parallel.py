"""Several processes on one run: CFG-parallel and Ulysses sequence parallel.

Launch with `torchrun --nproc-per-node N` (it sets RANK / WORLD_SIZE / LOCAL_RANK); NCCL on
CUDA, gloo on CPU. One device mesh ("cfg", "ring", "ulysses") carries both splits:

- cfg (2 processes): rank 0 runs the unconditional branch, rank 1 the conditional one, and an
  all-gather over the mesh's "cfg" group gives every rank both velocities, so every rank
  takes the same scheduler step (same seed, same draws) and holds the same latents. No
  engine offers this split for our model: diffusers has no CFG-parallel, and xDiT's
  (xfuser 0.7) needs its own pipeline classes and refuses to start without an accelerator; it
  is one collective on torch.distributed.
- ulysses (N processes): diffusers' context-parallel engine. Its plan (ECHOVIDEO_CP_PLAN)
  splits the text and video tokens of the block stack along the sequence at the first block,
  the rotary tables likewise at every block, and gathers the sequence at `proj_out`; the
  blocks' joint attention goes through diffusers' dispatcher (attention.py), whose Ulysses
  all-to-all exchanges heads for sequence. Each rank holds a slice of the text tokens and of
  the video tokens, which is a permutation of the full sequence: attention is the same, and
  the rotary slice matches the video slice. Ring attention needs a backend returning the
  log-sum-exp (flash / sage / cuDNN: CUDA only), so `--parallel` offers Ulysses.
- cfg+ulysses (2 x U processes): both, the Ulysses groups inside each CFG half.

`diffusers`' `enable_parallelism` computes `rank % torch.accelerator.device_count()`, which
divides by zero on a CPU-only machine; `enable_sequence_parallel` therefore performs its three
steps itself (config setup on our mesh, processors told the config, the plan's hooks), on
CUDA and CPU alike, so the path the CPU tests check is the one GPUs run.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist

from echovideo_core.acceleration.branches import one_branch_call
from echovideo_core.acceleration.counting import transformer_blocks
from echovideo_core.acceleration.options import SpeedOptionError
from echovideo_core.errors import InvalidInputError
from echovideo_core.sampling import DenoisingModel, ModelCall, ModelInputs

logger = logging.getLogger(__name__)

MESH_DIMS: tuple[str, str, str] = ("cfg", "ring", "ulysses")


def echovideo_cp_plan(num_layers: int) -> dict[str, Any]:
    """Where diffusers' context-parallel hooks split and gather our transformer's tensors."""
    from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

    sequence = ContextParallelInput(split_dim=1, expected_dims=3, split_output=False)
    table = ContextParallelInput(split_dim=0, expected_dims=2, split_output=False)
    return {
        "transformer_blocks.0": {"hidden_states": sequence, "encoder_hidden_states": sequence},
        "transformer_blocks.*": {"image_rotary_emb": [table, table]},
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }


@dataclass(frozen=True)
class ParallelSetup:
    """This process's place in a multi-process run.

    mode: "none" | "cfg" | "ulysses" | "cfg+ulysses"; cfg_degree: 1 or 2 branches split;
    ulysses_degree: processes sharing one branch's sequence; cfg_rank: the branch this process
    runs (0 uncond, 1 cond) under CFG-parallel; mesh: the ("cfg", "ring", "ulysses") DeviceMesh.
    """

    mode: str
    rank: int
    world_size: int
    cfg_degree: int
    ulysses_degree: int
    device: torch.device
    mesh: Any = None

    @property
    def cfg_rank(self) -> int:
        return self.mesh.get_local_rank("cfg") if self.cfg_degree > 1 else 0

    @property
    def writes_outputs(self) -> bool:
        """Only rank 0 writes files (every rank holds the same latents)."""
        return self.rank == 0


SINGLE_PROCESS = ParallelSetup("none", 0, 1, 1, 1, torch.device("cpu"))


def degrees(mode: str, world_size: int) -> tuple[int, int]:
    """(cfg_degree, ulysses_degree) for `mode` on `world_size` processes, or a clear error."""
    launch = "launch with torchrun --nproc-per-node N -m echovideo_core generate ..."
    if mode == "none":
        if world_size > 1:
            raise SpeedOptionError(f"{world_size} processes were started but --parallel is none: pass --parallel "
                                   "cfg|ulysses|cfg+ulysses, or start one process")
        return 1, 1
    if mode == "cfg" and world_size != 2:
        raise SpeedOptionError(f"--parallel cfg runs the two guidance branches on 2 processes, got {world_size}; {launch}")
    if mode == "ulysses" and world_size < 2:
        raise SpeedOptionError(f"--parallel ulysses needs 2 or more processes, got {world_size}; {launch}")
    if mode == "cfg+ulysses" and (world_size < 4 or world_size % 2):
        raise SpeedOptionError(f"--parallel cfg+ulysses needs an even number of processes >= 4, got {world_size}; {launch}")
    cfg = 2 if "cfg" in mode else 1
    return cfg, world_size // cfg


def check_sequence_split(ulysses_degree: int, *, heads: int, text_tokens: int, video_tokens: int) -> None:
    """Ulysses splits heads and both token runs evenly; say which one does not divide."""
    if ulysses_degree == 1:
        return
    for what, count in (("attention heads", heads), ("text tokens", text_tokens), ("video tokens", video_tokens)):
        if count % ulysses_degree:
            raise SpeedOptionError(f"--parallel ulysses on {ulysses_degree} processes needs the {what} ({count}) to "
                                   f"divide by {ulysses_degree}; use another process count or size")


def check_sequence_split_for(config: Any, setup: ParallelSetup, *, height: int, width: int, num_frames: int) -> None:
    """check_sequence_split for a transformer config and a video size (no-op without Ulysses)."""
    from echovideo_core.geometry import VAE_SPATIAL_COMPRESSION, latent_frame_count

    grid = VAE_SPATIAL_COMPRESSION * int(config.patch_size)
    video_tokens = latent_frame_count(num_frames) * (height // grid) * (width // grid)
    check_sequence_split(setup.ulysses_degree, heads=int(config.num_attention_heads),
                         text_tokens=int(config.max_text_seq_length), video_tokens=video_tokens)


def init_parallel(mode: str, device: torch.device | str) -> ParallelSetup:
    """Join the process group torchrun prepared (or do nothing for mode "none")."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cfg, ulysses = degrees(mode, world_size)
    device = torch.device(device)
    if mode == "none":
        return ParallelSetup("none", 0, 1, 1, 1, device)
    from torch.distributed.device_mesh import init_device_mesh

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    mesh = init_device_mesh(device.type, (cfg, 1, ulysses), mesh_dim_names=MESH_DIMS)
    return ParallelSetup(mode, dist.get_rank(), world_size, cfg, ulysses, device, mesh)


def enable_sequence_parallel(transformer: torch.nn.Module, setup: ParallelSetup) -> None:
    """Ulysses over the mesh's "ulysses" dimension (the blocks must already use the
    dispatching attention processor, see attention.attention_backend(dispatch=True))."""
    from diffusers.hooks.context_parallel import apply_context_parallel
    from diffusers.models._modeling_parallel import ContextParallelConfig, ParallelConfig

    context = ContextParallelConfig(ulysses_degree=setup.ulysses_degree, mesh=setup.mesh)
    config = ParallelConfig(context_parallel_config=context)
    config.setup(setup.rank, setup.world_size, setup.device, mesh=setup.mesh)
    for block in transformer_blocks(transformer):
        block.attn1.processor._parallel_config = config
    apply_context_parallel(transformer, context, echovideo_cp_plan(len(transformer_blocks(transformer))))


def disable_sequence_parallel(transformer: torch.nn.Module) -> None:
    from diffusers.hooks.context_parallel import remove_context_parallel

    remove_context_parallel(transformer, echovideo_cp_plan(len(transformer_blocks(transformer))))
    for block in transformer_blocks(transformer):
        if hasattr(block.attn1.processor, "_parallel_config"):
            block.attn1.processor._parallel_config = None


def cfg_parallel_call(setup: ParallelSetup, *, cached: bool) -> ModelCall:
    """Each rank runs its own guidance branch; one all-gather over the "cfg" group returns
    [uncond ; cond] to every rank."""
    own = one_branch_call(setup.cfg_rank, cached=cached)
    group = setup.mesh.get_group("cfg")

    def call(model: DenoisingModel, inputs: ModelInputs) -> torch.Tensor:
        if inputs.branches not in (1, setup.cfg_degree):
            raise InvalidInputError(f"--parallel cfg splits {setup.cfg_degree} guidance branches over the ranks; this "
                                    f"run has {inputs.branches} (identity guidance adds one): use --parallel ulysses")
        mine = own(model, inputs).contiguous()
        if inputs.branches == 1:  # nothing to split: both ranks ran the single branch
            return mine
        parts = [torch.empty_like(mine) for _ in range(setup.cfg_degree)]
        dist.all_gather(parts, mine, group=group)
        return torch.cat(parts)

    return call


@contextmanager
def parallel_run(mode: str, device: torch.device | str) -> Iterator[ParallelSetup]:
    """init_parallel for the `with`, then the process-group teardown, which may hang
    (pytorch#75097): after a final barrier a watchdog (training's) ends the finished worker."""
    setup = init_parallel(mode, device)
    if setup.mode == "none":
        yield setup
        return
    from echovideo_core.distributed import exit_if_teardown_hangs

    try:
        yield setup
        dist.barrier()
    finally:
        with exit_if_teardown_hangs(True):
            dist.destroy_process_group()
