"""The generation stages over separately loaded components, one call per stage.

For front ends that run and cache the stages one by one (the ComfyUI nodes): face ->
`encode_face`, prompt -> `encode_text`, both -> `fuse` (IITF once per run, both CFG
branches), -> `sample` (noise, face latent, denoising loop), -> `decode`. Every stage calls
the same code as `EchoVideoPipeline` (its public stage methods), so a node graph gives the
pipeline's numbers for the same inputs, seed and settings.

Numerics: the face features follow the release (`as_released`: SigLIP pixels and ArcFace
rounded to bfloat16); `dynamic_cfg` picks the guidance schedule only.
Random draws come from one CPU generator seeded with `seed`, in the release's order
(initial noise, face-latent sample, then the scheduler's draws).
"""
from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from echovideo_core.components import EchoVideoModel, FaceModels, MakeRoom, TextEncoder, running_on
from echovideo_core.decode import DecodedFrames
from echovideo_core.face_features import FaceFeatures, face_features, unconditional_face_features
from echovideo_core.guidance import NUMERIC_MODES
from echovideo_core.pipeline import Conditioning, EchoVideoPipeline
from echovideo_core.sampling import OnStep
from echovideo_core.text import PromptEmbeddings, encode_prompt
from echovideo_core.validation import check_guidance, check_num_frames, check_size, check_steps

logger = logging.getLogger(__name__)

DYNAMIC_CFG_MODES: tuple[str, ...] = ("as_released", "corrected", "off")


@dataclass(frozen=True)
class FaceEncoding:
    """One identity, ready for fusion and for the face latent.

    identity_image: (512, 512, 3) uint8 masked aligned face; arcface: (512,) float32 raw.
    cond / uncond: FaceFeatures (siglip (1, 196, D_face), arcface (1, 512)) for both CFG branches.
    method: how the face was found ("insightface", "retinaface", "whole_image");
    warnings: everything the user should know (fallbacks, several faces, outlier photos).
    """

    identity_image: np.ndarray
    arcface: np.ndarray
    cond: FaceFeatures
    uncond: FaceFeatures
    method: str
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class TextEncoding:
    """negative / positive: T5 embeddings (1, 226, D_text) of the negative prompt and the prompt."""

    negative: PromptEmbeddings
    positive: PromptEmbeddings


def _view(model: EchoVideoModel) -> EchoVideoPipeline:
    """The pipeline's stage methods over the loaded transformer, VAE and scheduler only."""
    return EchoVideoPipeline(transformer=model.transformer, vae=model.vae, text_encoder=None, tokenizer=None,
                             scheduler=model.scheduler, siglip=None)


def images_to_photos(images: torch.Tensor) -> list[torch.Tensor]:
    """ComfyUI IMAGE (B, H, W, C) float 0..1 -> B single photos (1, H, W, C)."""
    if images.ndim != 4:
        raise ValueError(f"expected an IMAGE batch (B, H, W, C), got shape {tuple(images.shape)}")
    return [images[i : i + 1] for i in range(images.shape[0])]


def encode_face(face_models: FaceModels, photos: Sequence[object], *, allow_no_face: bool = False,
                face_index: int = 0, mode: str = "as_released") -> FaceEncoding:
    """Prepare one photo (or combine several of one person) and compute both face-feature branches.

    mode "as_released" rounds the SigLIP pixels and the ArcFace vector to bfloat16 as the
    release does; "corrected" keeps them in float32 (see guidance.NUMERIC_MODES)."""
    from echovideo_core.face.multi import prepare_many

    if mode not in NUMERIC_MODES:
        raise ValueError(f"mode must be one of {NUMERIC_MODES}, got {mode!r}")
    preparer = _with_allow_no_face(face_models.preparer, allow_no_face)
    result = prepare_many(preparer, list(photos), face_index=face_index)
    face = result.face
    siglip = face_models.siglip
    with running_on(siglip.model, face_models.placement):
        as_released = mode == "as_released"
        cond = face_features(siglip, face.identity_image, face.arcface, as_released=as_released)
        uncond = unconditional_face_features(siglip, face.identity_image.shape, as_released=as_released)
    notes = tuple(result.warnings) if len(photos) > 1 else tuple(face.warnings)
    return FaceEncoding(identity_image=face.identity_image, arcface=face.arcface, cond=cond, uncond=uncond,
                        method=face.method, warnings=notes)


def _with_allow_no_face(preparer: object, allow_no_face: bool) -> object:
    """A shallow copy with the per-call setting (the loaded models are shared, not copied)."""
    import copy

    view = copy.copy(preparer)
    view.allow_no_face = allow_no_face
    return view


def identity_image_batch(face: FaceEncoding) -> torch.Tensor:
    """The identity image as a ComfyUI IMAGE (1, 512, 512, 3) float32 in [0, 1]."""
    return torch.from_numpy(face.identity_image.astype(np.float32) / 255.0)[None]


def encode_text(text_encoder: TextEncoder, prompt: str, negative_prompt: str = "", *,
                max_length: int = 226, make_room: MakeRoom | None = None) -> TextEncoding:
    """T5 of the prompt and of the negative prompt (226 tokens each, no attention mask)."""
    with running_on(text_encoder.model, text_encoder.placement, make_room):
        negative = encode_prompt(text_encoder.tokenizer, text_encoder.model, negative_prompt or "", max_length)
        positive = encode_prompt(text_encoder.tokenizer, text_encoder.model, prompt, max_length)
    return TextEncoding(negative=negative, positive=positive)


def fuse(model: EchoVideoModel, text: TextEncoding, face: FaceEncoding, *, make_room: MakeRoom | None = None) -> Conditioning:
    """IITF once for both branches: tokens (2, 226, D_text) as [uncond ; cond]."""
    expected = int(model.transformer.config.max_text_seq_length)
    if text.positive.embeds.shape[1] != expected:
        raise ValueError(f"text embeddings have {text.positive.embeds.shape[1]} tokens, the model needs {expected}")
    with running_on(model.transformer, model.placement, make_room):
        return _view(model).fuse(text.negative, text.positive, face.uncond, face.cond, do_cfg=True)


def branches_for(conditioning: Conditioning, guidance_scale: float) -> Conditioning:
    """Without guidance (scale <= 1) only the conditional half is run, as the pipeline does."""
    if guidance_scale > 1.0 or not conditioning.do_cfg:
        return conditioning
    return Conditioning(tokens=conditioning.tokens[conditioning.tokens.shape[0] // 2 :], do_cfg=False)


def sample(model: EchoVideoModel, conditioning: Conditioning, face: FaceEncoding, *, width: int, height: int,
           num_frames: int, steps: int, guidance_scale: float, dynamic_cfg: str = "as_released", seed: int = 42,
           on_step: OnStep | None = None, make_room: MakeRoom | None = None) -> torch.Tensor:
    """Noise -> face latent -> denoising loop: final latents (1, F', C, H/8, W/8) float32."""
    if dynamic_cfg not in DYNAMIC_CFG_MODES:
        raise ValueError(f"dynamic_cfg must be one of {DYNAMIC_CFG_MODES}, got {dynamic_cfg!r}")
    check_size(height, width)
    check_num_frames(num_frames, temporal_compression=model.vae.config.temporal_compression_ratio)
    check_steps(steps)
    check_guidance(guidance_scale)
    pipe = _view(model)
    generator = torch.Generator("cpu").manual_seed(int(seed))
    with running_on(model.vae, model.placement, make_room):
        noise = pipe.initial_noise(height, width, num_frames, generator)
        face_latent = pipe.face_latent(face.identity_image, height, width, num_frames, generator)
    with running_on(model.transformer, model.placement, make_room):
        return pipe.denoise(
            branches_for(conditioning, guidance_scale), face_latent, noise.to(pipe.device), height=height,
            width=width, num_frames=num_frames, num_inference_steps=steps, guidance_scale=guidance_scale,
            use_dynamic_cfg=dynamic_cfg != "off", mode="corrected" if dynamic_cfg == "corrected" else "as_released",
            generator=generator, on_step=on_step,
        ).cpu()


@contextmanager
def _call_between_blocks(module: torch.nn.Module, check: Callable[[], None] | None) -> Iterator[None]:
    """Run `check()` before every block of a VAE decoder (so a cancel stops a long decode)."""
    if check is None:
        yield
        return
    blocks = list(getattr(module, "up_blocks", [])) + [getattr(module, "conv_out", module)]
    handles = [block.register_forward_pre_hook(lambda *_: check()) for block in blocks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def decode(model: EchoVideoModel, latents: torch.Tensor, *, dtype: torch.dtype = torch.float16, tiling: bool = False,
           check: Callable[[], None] | None = None, make_room: MakeRoom | None = None) -> DecodedFrames:
    """Latents (B, F', C, h, w) -> frames (B, F, H, W, 3) float32 in [0, 1]; `check()` runs
    between decoder blocks (it may raise to cancel)."""
    with running_on(model.vae, model.placement, make_room), ExitStack() as stack:
        stack.enter_context(_call_between_blocks(model.vae.decoder, check))
        return _view(model).decode(latents, dtype=dtype, tiling=tiling)


def frames_to_images(frames: torch.Tensor) -> torch.Tensor:
    """(B, F, H, W, 3) -> ComfyUI IMAGE (B*F, H, W, 3) float32 in [0, 1]."""
    return frames.reshape(-1, *frames.shape[2:]).float().cpu()


def latent_preview(latents: torch.Tensor) -> torch.Tensor:
    """A coarse (h, w, 3) picture in [-1, 1] of the first latent frame, for progress previews.

    No colour model exists for this latent space: the channels are split in three groups
    (for any channel count >= 3),
    each group's mean becomes one RGB channel, scaled by its largest magnitude. It shows
    layout and motion, not colours.
    """
    frame = latents[0, 0].float()  # (C, h, w)
    # tensor_split, not chunk: chunk(3) of 4 channels gives only 2 groups (a 2-channel image)
    groups = torch.stack([g.mean(0) for g in frame.tensor_split(3, dim=0)], dim=-1)
    return groups / groups.abs().amax().clamp_min(1e-6)
