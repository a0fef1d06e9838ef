"""Checks of the generation arguments, each failing with its own clear message.

The model's limits: frames = 4k + 1 (the VAE compresses time x4 around a first frame),
at most 49 (the trained length; longer only when asked explicitly), height and width
multiples of 16 (x8 VAE, x2 patches), 1 to 1000 denoising steps (1000 is the number of
training timesteps of the release's scheduler: more steps than timesteps would repeat
timesteps, which the CogVideoX schedulers do not handle). Output settings: frame rate 1 to
120 (the range of ComfyUI's Create Video node; players handle no more), seeds 0 to 2**64 - 1
(what torch.Generator.manual_seed takes, and ComfyUI's seed widget).

Light on purpose (torch is imported only by the two checks that need it), so the CLI can
check its arguments within a second, before anything heavy is imported.
"""
from __future__ import annotations

import logging
import math

from echovideo_core.errors import InvalidInputError
from echovideo_core.geometry import latent_frame_count

logger = logging.getLogger(__name__)

MAX_FRAMES = 49
SIZE_MULTIPLE = 16
MAX_STEPS = 1000  # the release scheduler's num_train_timesteps
MAX_FPS = 120
MAX_SEED = 2**64 - 1
OUTPUT_TYPES: tuple[str, ...] = ("np", "pt", "latent")
SCHEDULER_NAMES: tuple[str, ...] = ("dpm", "ddim")  # the samplers of sampling.SCHEDULERS, in this order
OFFLOAD_MODES: tuple[str, ...] = ("none", "model", "blocks:N", "sequential")
OFFLOAD_HELP = ("none: everything stays on the GPU (fastest, most memory); model: each component on the GPU only "
                "while it runs; blocks:N: block swap, N of the DiT's 42 blocks wait on the CPU and are streamed in "
                "(overlapped with compute on CUDA), the rest as model; sequential: the DiT visits the GPU one layer "
                "at a time (least memory, slowest)")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_num_frames(num_frames: int, *, allow_long_video: bool = False, temporal_compression: int = 4) -> None:
    """4k + 1 frames, at most 49 unless `allow_long_video` (then a warning)."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise InvalidInputError(f"num_frames must be a positive integer, got {num_frames!r}")
    if (num_frames - 1) % temporal_compression:
        below = num_frames - (num_frames - 1) % temporal_compression
        raise InvalidInputError(
            f"num_frames must be {temporal_compression}k+1 (1, 9, 17, ..., 49), got {num_frames}; "
            f"nearest valid values: {below} or {below + temporal_compression}"
        )
    if num_frames > MAX_FRAMES:
        if not allow_long_video:
            raise InvalidInputError(
                f"num_frames must be at most {MAX_FRAMES} (the trained length), got {num_frames}; "
                "pass allow_long_video=True to try longer videos anyway"
            )
        logger.warning("num_frames=%d is beyond the trained %d frames: expect degraded video", num_frames, MAX_FRAMES)
    latent_frames = latent_frame_count(num_frames, temporal_compression)
    if latent_frames % 2 == 0:
        logger.warning(
            "num_frames=%d gives an even latent frame count (%d): the CogVideoX VAE then decodes "
            "%d frames, not %d (as the release does); 1, 9, 17, 25, 33, 41, 49 avoid this",
            num_frames, latent_frames, temporal_compression * latent_frames, num_frames,
        )


def check_size(height: int, width: int) -> None:
    """Height and width in pixels, positive multiples of 16."""
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        if value % SIZE_MULTIPLE:
            down = value - value % SIZE_MULTIPLE
            raise InvalidInputError(
                f"{name} must be a multiple of {SIZE_MULTIPLE}, got {value} "
                f"(try {down or SIZE_MULTIPLE} or {down + SIZE_MULTIPLE})"
            )


def check_steps(num_inference_steps: int) -> None:
    """1 to MAX_STEPS denoising steps."""
    if not _is_int(num_inference_steps) or not 1 <= num_inference_steps <= MAX_STEPS:
        raise InvalidInputError(f"num_inference_steps must be an integer from 1 to {MAX_STEPS} (the scheduler's "
                                f"training timesteps), got {num_inference_steps!r}")


def check_fps(fps: int) -> None:
    """A whole frame rate from 1 to MAX_FPS."""
    if not _is_int(fps) or not 1 <= fps <= MAX_FPS:
        raise InvalidInputError(f"fps must be an integer from 1 to {MAX_FPS}, got {fps!r}")


def check_seed(seed: int) -> None:
    """A seed torch.Generator takes: 0 to 2**64 - 1."""
    if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"seed must be an integer from 0 to 2**64 - 1, got {seed!r}")


def check_finite(name: str, value: float) -> None:
    """A finite number (a LoRA strength, a scale)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number, got {value!r}")


def check_guidance(guidance_scale: float) -> None:
    """A finite, non-negative guidance scale (<= 1 turns classifier-free guidance off)."""
    if not isinstance(guidance_scale, (int, float)) or not math.isfinite(guidance_scale) or guidance_scale < 0:
        raise InvalidInputError(f"guidance_scale must be a finite number >= 0, got {guidance_scale!r}")


def check_options(output_type: str, decode_dtype: object, prompt: object, negative_prompt: object) -> None:
    """The remaining arguments of a call: output type, decode dtype, prompt types."""
    import torch

    if output_type not in OUTPUT_TYPES:
        raise InvalidInputError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
    if not isinstance(decode_dtype, torch.dtype) or not decode_dtype.is_floating_point:
        raise InvalidInputError(f"decode_dtype must be a floating torch dtype, got {decode_dtype!r}")
    if not isinstance(prompt, str):
        raise InvalidInputError(f"prompt must be a string, got {type(prompt).__name__}")
    if negative_prompt is not None and not isinstance(negative_prompt, str):
        raise InvalidInputError(f"negative_prompt must be a string or None, got {type(negative_prompt).__name__}")


def check_generator(generator: object) -> None:
    """None or a torch.Generator (a seed goes through `torch.Generator("cpu").manual_seed(seed)`)."""
    import torch

    if generator is not None and not isinstance(generator, torch.Generator):
        raise InvalidInputError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}; "
            'for a seed pass generator=torch.Generator("cpu").manual_seed(seed)'
        )


def parse_offload(offload: str) -> tuple[str, int]:
    """"none" | "model" | "sequential" | "blocks:N" -> (placement mode, swapped blocks)."""
    modes = {"none": "main_device", "model": "model_offload", "sequential": "sequential_offload"}
    if offload in modes:
        return modes[offload], 0
    if isinstance(offload, str) and offload.startswith("blocks:"):
        try:
            return "block_swap", int(offload[len("blocks:"):])
        except ValueError:
            pass
    raise InvalidInputError(f"offload must be one of {', '.join(OFFLOAD_MODES)} (N a number of blocks); got {offload!r}")
