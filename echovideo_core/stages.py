"""The generation stages: the library's API, shared by every front end.

    text   = encode_text(text_encoder, prompt, negative_prompt)      T5, 226 tokens each
    face   = encode_face(face_models, photos)                        detect, align, mask + SigLIP/ArcFace
             (or face_features(face_encoder, identity_image, arcface) for a prepared face)
    cond   = fuse(model, text, face.uncond, face.cond)               IITF, once per run
    latents = sample(model, cond, face.identity_image, settings, generator)
             = initial_noise -> face_latent -> denoise               (the release's RNG order)
    frames = decode(model, latents)

The Python pipeline (`EchoVideoPipeline.__call__`), the CLI, the ComfyUI nodes and
training's validation preview all call these functions, so a rule (what guidance <= 1
means, which random draw comes first, what is checked) lives in one place. Each stage takes
typed bundles (`bundles.py`) and returns a frozen dataclass or a tensor whose layout its
docstring gives. Where a bundle's placement offloads, each model visits the execution
device only inside its stage (`placement.running_on`).
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from echovideo_core.bundles import EchoVideoModel, FaceEncoder, FaceModels, TextEncoder
from echovideo_core.decode import DecodedFrames, decode_latents
from echovideo_core.face_features import FaceFeatures, check_arcface, face_features as siglip_features
from echovideo_core.face_features import check_identity_image, unconditional_face_features
from echovideo_core.face_latent import FaceLatent, encode_face_latent
from echovideo_core.geometry import latent_shape, vae_temporal_factor
from echovideo_core.guidance import guidance_scales, uses_guidance
from echovideo_core.hooks import Check, check_before_blocks
from echovideo_core.numerics import FeatureRounding, feature_rounding_from
from echovideo_core.placement import MakeRoom, running_on
from echovideo_core.rotary import rotary_embeddings
from echovideo_core.identity import IdentityControls, scaled_identity
from echovideo_core.sampling import (GuidancePlan, ModelCall, OnStep, SamplingInputs, SamplingSettings, batched_call,
                                     denoise as denoise_loop, make_scheduler)
from echovideo_core.text import PromptEmbeddings, encode_prompt
from echovideo_core.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from echovideo_core.acceleration.options import SpeedOptions
from echovideo_core.validation import check_generator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextEncoding:
    """negative / positive: T5 embeddings (1, 226, D_text) of the negative prompt and the prompt."""

    negative: PromptEmbeddings
    positive: PromptEmbeddings


@dataclass(frozen=True)
class FaceEncoding:
    """One identity, ready for fusion and for the face latent.

    identity_image: (H, W, 3) uint8 masked aligned face (512 x 512 from face preparation);
    arcface: (512,) float32 raw. cond / uncond: FaceFeatures (siglip (1, 196, D_face),
    arcface (1, 512)) of both CFG branches (uncond: black image, zero vector).
    method: how the face was found ("insightface", "retinaface", "whole_image", or
    "prepared" for an identity image given as is); warnings: what the user should know.
    """

    identity_image: np.ndarray
    arcface: np.ndarray
    cond: FaceFeatures
    uncond: FaceFeatures
    method: str = "prepared"
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Conditioning:
    """tokens: (2B, 226, D_text) fused IITF tokens [uncond ; cond] with CFG, (B, 226, D_text)
    without; the transformer reads them in place of T5 at every step.

    text / no_face: the prompt's T5 embeddings and the "no face" features (black SigLIP, zero
    ArcFace) that made them, kept so that the identity controls can fuse the text-only
    tokens when they are used (`text_only_tokens`); nothing is computed for them otherwise.
    """

    tokens: torch.Tensor
    do_cfg: bool
    text: torch.Tensor | None = None
    no_face: FaceFeatures | None = None


def seeded_generator(seed: int) -> torch.Generator:
    """The run's one random stream: a CPU generator, so a seed gives the same video on any device."""
    return torch.Generator("cpu").manual_seed(int(seed))


# ---- tokens ---------------------------------------------------------------------------

def encode_text(text_encoder: TextEncoder, prompt: str, negative_prompt: str | None = "", *,
                max_length: int = 226, make_room: MakeRoom | None = None) -> TextEncoding:
    """T5 of the negative prompt and of the prompt (226 tokens each, no attention mask)."""
    with running_on(text_encoder.model, text_encoder.placement, make_room):
        negative = encode_prompt(text_encoder.tokenizer, text_encoder.model, negative_prompt or "", max_length)
        positive = encode_prompt(text_encoder.tokenizer, text_encoder.model, prompt, max_length)
    return TextEncoding(negative=negative, positive=positive)


def face_features(encoder: FaceEncoder, identity_image: np.ndarray, arcface: np.ndarray | torch.Tensor, *,
                  feature_rounding: FeatureRounding = "bfloat16", method: str = "prepared",
                  warnings: tuple[str, ...] = (), make_room: MakeRoom | None = None) -> FaceEncoding:
    """SigLIP + ArcFace features of a prepared identity image, for both guidance branches."""
    image = check_identity_image(identity_image)
    vector = check_arcface(arcface)
    rounding = feature_rounding_from(feature_rounding)
    with running_on(encoder.siglip.model, encoder.placement, make_room):
        cond = siglip_features(encoder.siglip, image, vector, feature_rounding=rounding)
        uncond = unconditional_face_features(encoder.siglip, image.shape, feature_rounding=rounding)
    return FaceEncoding(identity_image=image, arcface=vector[0].numpy(), cond=cond, uncond=uncond,
                        method=method, warnings=tuple(warnings))


def encode_face(face_models: FaceModels, photos: Sequence[object], *, allow_no_face: bool = False,
                face_index: int = 0, feature_rounding: FeatureRounding = "bfloat16",
                make_room: MakeRoom | None = None) -> FaceEncoding:
    """Prepare one photo (or combine several of one person), then `face_features`."""
    from echovideo_core.face.multi import prepare_many

    result = prepare_many(face_models.preparer, list(photos), face_index=face_index, allow_no_face=allow_no_face)
    face = result.face
    notes = tuple(result.warnings) if len(photos) > 1 else tuple(face.warnings)
    return face_features(face_models.encoder, face.identity_image, face.arcface, feature_rounding=feature_rounding,
                         method=face.method, warnings=notes, make_room=make_room)


def fuse(model: EchoVideoModel, text: TextEncoding, uncond: FaceFeatures, cond: FaceFeatures, *, do_cfg: bool = True,
         make_room: MakeRoom | None = None) -> Conditioning:
    """IITF once per run, batched as [uncond ; cond] (only cond without CFG); the face
    branches are a FaceEncoding's `uncond` / `cond`."""
    expected = int(model.transformer.config.max_text_seq_length)
    if text.positive.embeds.shape[1] != expected:
        raise ValueError(f"text embeddings have {text.positive.embeds.shape[1]} tokens, the model needs {expected}")
    if do_cfg:
        embeds = torch.cat([text.negative.embeds, text.positive.embeds])
        siglip = torch.cat([uncond.siglip, cond.siglip])
        arcface = torch.cat([uncond.arcface, cond.arcface])
    else:
        embeds, siglip, arcface = text.positive.embeds, cond.siglip, cond.arcface
    transformer = model.transformer
    with running_on(transformer, model.placement, make_room), torch.no_grad():
        device = transformer.device
        tokens = transformer.fuse(embeds.to(device), siglip.to(device), arcface.to(device))
    return Conditioning(tokens=tokens, do_cfg=do_cfg, text=text.positive.embeds, no_face=uncond)


def text_only_tokens(model: EchoVideoModel, conditioning: Conditioning) -> torch.Tensor:
    """(B, 226, D) fusion of the prompt with the "no face" features: the text-only model
    (what CFG dropout of the face trained), for the identity controls."""
    if conditioning.text is None or conditioning.no_face is None:
        raise InvalidInputError("this conditioning was made without its prompt embeddings: fuse it again to use "
                                "the identity controls")
    transformer = model.transformer
    with torch.no_grad():
        device = transformer.device
        no_face = conditioning.no_face
        return transformer.fuse(conditioning.text.to(device), no_face.siglip.to(device), no_face.arcface.to(device))


def branches_for(conditioning: Conditioning, guidance_scale: float) -> Conditioning:
    """The branches a run needs: without guidance (see guidance.uses_guidance) only the
    conditional half of a two-branch conditioning is run."""
    if uses_guidance(guidance_scale) or not conditioning.do_cfg:
        return conditioning
    return replace(conditioning, tokens=conditioning.tokens[conditioning.tokens.shape[0] // 2 :], do_cfg=False)


# ---- latents --------------------------------------------------------------------------

def initial_noise(model: EchoVideoModel, settings: SamplingSettings, generator: torch.Generator | None) -> torch.Tensor:
    """(1, F', C, H/8, W/8) float32 standard normal noise x init sigma: the run's first random draw."""
    from diffusers.utils.torch_utils import randn_tensor

    channels = int(model.transformer.config.in_channels) // 2  # [noisy ; face latent] on channels
    shape = latent_shape(model.vae, channels, settings.height, settings.width, settings.num_frames)
    noise = randn_tensor(shape, generator=generator, device=model.transformer.device, dtype=torch.float32)
    return noise * model.scheduler.init_noise_sigma


def face_latent(model: EchoVideoModel, identity_image: np.ndarray, settings: SamplingSettings,
                generator: torch.Generator | None) -> FaceLatent:
    """The shallow face latent (1, F', C, h, w); draws the run's second random tensor."""
    return encode_face_latent(model.vae, identity_image, height=settings.height, width=settings.width,
                              num_frames=settings.num_frames, generator=generator)


def guidance_plan(model: EchoVideoModel, conditioning: Conditioning, settings: SamplingSettings,
                  timesteps: Sequence[int], identity: IdentityControls = IdentityControls()) -> GuidancePlan:
    """The branches each step runs: the release's two-branch CFG, plus what the identity
    controls ask for (identity.py); without controls nothing else is computed."""
    conditioning = branches_for(conditioning, settings.guidance_scale)
    scales = guidance_scales(settings.guidance_scale, list(timesteps), settings.cfg_schedule)
    if not identity.active:
        return GuidancePlan(conditioning=conditioning.tokens, guidance=scales, do_cfg=conditioning.do_cfg)
    text_only = text_only_tokens(model, conditioning)
    tokens = conditioning.tokens
    half = tokens.shape[0] // 2 if conditioning.do_cfg else 0
    cond = scaled_identity(tokens[half:], text_only.to(tokens.dtype), identity.strength)
    return GuidancePlan(conditioning=torch.cat([tokens[:half], cond]), guidance=scales, do_cfg=conditioning.do_cfg,
                        text_only=text_only, window=identity.window, identity_scale=identity.guidance)


def denoise(model: EchoVideoModel, conditioning: Conditioning, face: FaceLatent, noise: torch.Tensor,
            settings: SamplingSettings, *, generator: torch.Generator | None,
            on_step: OnStep | None = None, identity: IdentityControls = IdentityControls(),
            model_call: ModelCall = batched_call, check: Check | None = None) -> torch.Tensor:
    """The sampling loop on a fresh scheduler; returns the final (1, F', C, h, w) float32 latents.
    `model_call` runs the DiT for one step (sampling.ModelCall; the speed options set it);
    `check()` runs before every transformer block (it may raise to cancel mid-step)."""
    transformer = model.transformer
    scheduler = make_scheduler(model.scheduler.config, settings.num_inference_steps, settings.scheduler)
    rotary = None
    if transformer.config.use_rotary_positional_embeddings:
        rotary = rotary_embeddings(transformer.config, height=settings.height, width=settings.width,
                                   num_frames=settings.num_frames, device=transformer.device)
    plan = guidance_plan(model, conditioning, settings, scheduler.timesteps.tolist(), identity)
    inputs = SamplingInputs(noise=noise, face_latent=face.latents, plan=plan, rotary=rotary)
    with check_before_blocks(transformer.transformer_blocks, check):
        return denoise_loop(transformer, scheduler, inputs, generator=generator, on_step=on_step,
                            model_call=model_call)


def sample(model: EchoVideoModel, conditioning: Conditioning, identity_image: np.ndarray,
           settings: SamplingSettings, *, generator: torch.Generator | None, on_step: OnStep | None = None,
           make_room: MakeRoom | None = None, identity: IdentityControls = IdentityControls(),
           model_call: ModelCall = batched_call, speed: "SpeedOptions | None" = None,
           mag_ratios: Sequence[float] | None = None, check: Check | None = None) -> torch.Tensor:
    """Noise -> face latent -> denoising loop: final latents (1, F', C, H/8, W/8) float32 on the CPU.
    `speed`: speed options applied for this run only (acceleration.accelerated; the model is
    left as it was; `mag_ratios` feeds --cache magcache); else `model_call` runs each step.
    `check()` runs before every transformer block (see `denoise`)."""
    settings = settings.check(vae_temporal_factor(model.vae))
    check_generator(generator)
    with running_on(model.vae, model.placement, make_room):
        noise = initial_noise(model, settings, generator)  # RNG draw 1
        face = face_latent(model, identity_image, settings, generator)  # RNG draw 2
    with running_on(model.transformer, model.placement, make_room), ExitStack() as stack:
        if speed is not None:
            from echovideo_core.acceleration.apply import accelerated

            model_call = stack.enter_context(accelerated(model.transformer, speed, mag_ratios=mag_ratios,
                                                         num_inference_steps=settings.num_inference_steps)).model_call
        return denoise(model, conditioning, face, noise.to(model.transformer.device), settings,
                       generator=generator, on_step=on_step, identity=identity, model_call=model_call,
                       check=check).cpu()


# ---- frames ---------------------------------------------------------------------------

def decoder_blocks(vae: torch.nn.Module) -> list[torch.nn.Module]:
    """The blocks of a VAE decoder between which a decode can stop."""
    decoder = vae.decoder
    return list(getattr(decoder, "up_blocks", [])) + [getattr(decoder, "conv_out", decoder)]


def decode(model: EchoVideoModel, latents: torch.Tensor, *, dtype: torch.dtype = torch.float16, tiling: bool = False,
           slicing: bool = False, check: Check | None = None,
           make_room: MakeRoom | None = None) -> DecodedFrames:
    """Latents (B, F', C, h, w) -> frames (B, F, H, W, 3) float32 in [0, 1]; `check()` runs
    between decoder blocks (it may raise to cancel). The model's VAE is left untouched."""
    with running_on(model.vae, model.placement, make_room), check_before_blocks(decoder_blocks(model.vae), check):
        return decode_latents(model.vae, latents, dtype=dtype, tiling=tiling, slicing=slicing)
