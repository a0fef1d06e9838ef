"""`EchoVideoPipeline`: face image + ArcFace + prompt -> video frames.

`from_pretrained` loads the released folder through `loading/`; `__call__` checks every
argument, then runs the stage functions of `stages.py` in order (the same functions the
CLI and the ComfyUI nodes run):

    encode_text -> face_features -> fuse -> sample (noise, face latent, denoise) -> decode

The public stage methods (`encode_prompt`, `face_features`, `fuse`, `initial_noise`,
`face_latent`, `denoise`, `decode`) run one stage alone and return its result, so a caller
can cache them. Numerics: `mode` is a preset of the two switches of `numerics.py`
("as_released", the default, reproduces the release exactly; "corrected" drops its
roundings and uses the step-index CFG schedule); `feature_rounding` / `cfg_schedule`
override either. No state carries over between calls: the scheduler is rebuilt per run and
the VAE is never cast in place.
"""
from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXDPMScheduler
from transformers import T5EncoderModel, T5Tokenizer

from echovideo_core import stages
from echovideo_core.bundles import EchoVideoModel, FaceEncoder, TextEncoder
from echovideo_core.decode import DecodedFrames
from echovideo_core.errors import InvalidInputError, MissingModelFilesError
from echovideo_core.face_features import FaceFeatures, check_arcface, check_identity_image
from echovideo_core.face_latent import FaceLatent
from echovideo_core.geometry import vae_temporal_factor
from echovideo_core.guidance import uses_guidance
from echovideo_core.identity import IdentityControls
from echovideo_core.loading.components import (RELEASED_FOLDERS, check_released_folder, load_dit, load_scheduler,
                                               load_t5_as)
from echovideo_core.loading.siglip import SiglipEncoder, load_siglip
from echovideo_core.loading.text_encoder import load_tokenizer
from echovideo_core.loading.vae import load_vae
from echovideo_core.numerics import CfgSchedule, FeatureRounding, numerics_for
from echovideo_core.block_swap import check_swap_count
from echovideo_core.placement import Placement, place_transformer, placement_for
from echovideo_core.sampling import ModelCall, OnStep, SamplingSettings, batched_call
from echovideo_core.stages import Conditioning, TextEncoding
from echovideo_core.text import PromptEmbeddings
from echovideo_core.transformer import EchoVideoTransformer3DModel
from echovideo_core.validation import check_generator, check_options

logger = logging.getLogger(__name__)

COMPONENT_FOLDERS = RELEASED_FOLDERS  # kept under its old name
__all__ = ["EchoVideoPipeline", "EchoVideoPipelineOutput", "Conditioning"]


@dataclass(frozen=True)
class EchoVideoPipelineOutput:
    """frames: (B, F, H, W, 3) float32 in [0, 1] (numpy for "np", torch for "pt", None for
    "latent"); latents: (B, F', C, H/8, W/8) float32 final latents, before any decode cast."""

    frames: np.ndarray | torch.Tensor | None
    latents: torch.Tensor


class EchoVideoPipeline:
    """The generation pipeline over the released folder layout (components as attributes)."""

    def __init__(self, *, transformer: EchoVideoTransformer3DModel, vae: AutoencoderKLCogVideoX,
                 text_encoder: T5EncoderModel | None, tokenizer: T5Tokenizer | None,
                 scheduler: CogVideoXDPMScheduler, siglip: SiglipEncoder | None) -> None:
        """Components as loaded. The encoders may be None for a pipeline that only samples and
        decodes; the stages that need them then say so. `scheduler` carries the sampler
        settings (its kind is chosen per call: `scheduler="dpm" | "ddim"`)."""
        if not isinstance(scheduler, (CogVideoXDPMScheduler, CogVideoXDDIMScheduler)):
            raise TypeError(f"EchoVideo samples with a CogVideoX DPM or DDIM scheduler, got {type(scheduler).__name__}")
        self.transformer = transformer
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.siglip = siglip
        self.placement: Placement | None = None  # None: every module stays where it is (see `offload`)

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, *, torch_dtype: torch.dtype = torch.float32,
        vae_dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
        transformer: EchoVideoTransformer3DModel | None = None, vae: AutoencoderKLCogVideoX | None = None,
        text_encoder: T5EncoderModel | None = None, tokenizer: T5Tokenizer | None = None,
        scheduler: CogVideoXDPMScheduler | None = None, siglip: SiglipEncoder | None = None,
        offload: str = "none", weights: str | None = None, transformer_file: str | Path | None = None,
        text_encoder_weights: str | None = None,
    ) -> "EchoVideoPipeline":
        """Load offline from a released folder; a component passed in is used as is.

        The layout is fixed (`loading.components.RELEASED_FOLDERS`). The VAE is kept in
        `vae_dtype` (float32: decoding in float32 then uses the checkpoint's own weights;
        other decode dtypes run on a temporary copy). With `device` every module moves there;
        without it nothing moves (loaded parts stay on the CPU). `offload` ("none", "model",
        "blocks:N", "sequential"; placement.OFFLOAD_MODES) keeps weights on the CPU until their
        stage runs on `device` (the same numbers, less GPU memory). `weights` stores the DiT's
        large layers low-bit ("fp8", "int8", "gguf-q4_k", ...; weights/formats.py), computing in
        `torch_dtype`; `transformer_file` replaces the folder's transformer/ (a .gguf or fp8
        file from `echovideo convert`); `text_encoder_weights` does the same for T5 ("fp8", "int8").
        """
        root = Path(folder)
        given = {"transformer": transformer, "vae": vae, "text_encoder": text_encoder,
                 "tokenizer": tokenizer, "scheduler": scheduler, "siglip": siglip}
        if transformer_file is not None:
            given["transformer"] = transformer_file
        check_released_folder(root, [name for name, part in given.items() if part is None])
        if transformer is None:
            transformer = load_dit(transformer_file or root / "transformer", dtype=torch_dtype, weights=weights)
        pipe = cls(
            transformer=transformer,
            vae=vae or load_vae(root / "vae", vae_dtype),
            text_encoder=text_encoder or load_t5_as(root / "text_encoder", dtype=torch_dtype, weights=text_encoder_weights),
            tokenizer=tokenizer or load_tokenizer(root / "tokenizer"),
            scheduler=scheduler or load_scheduler(root / "scheduler"),
            siglip=siglip or load_siglip(root / RELEASED_FOLDERS["siglip"], torch_dtype),
        )
        if offload == "none":
            return pipe if device is None else pipe.to(device)
        return pipe.offload(offload, device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def offload(self, offload: str, device: torch.device | str) -> "EchoVideoPipeline":
        """Let weights wait on the CPU and visit `device` only while they run (see placement.py):
        "model" moves each component in for its stage; "blocks:N" keeps the DiT on `device`
        except N blocks streamed in one at a time; "sequential" streams every DiT layer."""
        placement = placement_for(offload, device)
        if placement.mode == "block_swap":
            check_swap_count(placement.swap_blocks, len(self.transformer.transformer_blocks))
        for module in (self.vae, self.text_encoder, self.siglip and self.siglip.model):
            if module is not None:
                module.to(placement.storage_device)
        place_transformer(self.transformer, placement)
        self.placement = placement
        return self

    def to(self, device: torch.device | str) -> "EchoVideoPipeline":
        """Move every module to `device` (dtypes unchanged)."""
        if self.placement is not None:
            raise InvalidInputError("this pipeline offloads its weights (from_pretrained(offload=...)): load it again "
                                    "without offload to move it as a whole")
        for module in (self.transformer, self.vae, self.text_encoder, self.siglip and self.siglip.model):
            if module is not None:
                module.to(device)
        return self

    def free_encoders(self) -> "EchoVideoPipeline":
        """Drop T5 and SigLIP once a run's prompt and face are encoded: the DiT and the VAE then
        have their memory (T5 alone is ~9.5 GB in bf16, more than the DiT at fp8). Encoding
        again needs a pipeline loaded again; the face models (insightface) are never held here."""
        self.text_encoder = None
        self.siglip = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return self

    def apply_lora(self, path: str | Path, strength: float = 1.0) -> "EchoVideoPipeline":
        """Merge an EchoVideo LoRA (or a peft/kohya export) into this pipeline's transformer.

        The merge is in place and lasts for this pipeline object: to change the strength,
        load the transformer again (a merge keeps no copy of the 11 GB of base weights).
        """
        from echovideo_core.lora import apply_lora

        apply_lora(self.transformer, path, strength)
        return self

    @property
    def device(self) -> torch.device:
        """Where the math runs."""
        return self.placement.execution_device if self.placement is not None else self.transformer.device

    def _placement(self, module: torch.nn.Module) -> Placement:
        return self.placement or Placement.resident(next(module.parameters()).device)

    # ---- the bundles the stage functions take (built per call from the attributes) ------

    def _require(self, *names: str) -> None:
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise MissingModelFilesError(f"this pipeline has no {', '.join(missing)} (never loaded, or dropped by "
                                         "free_encoders): load them to run this stage")

    @property
    def model(self) -> EchoVideoModel:
        return EchoVideoModel(transformer=self.transformer, vae=self.vae, scheduler=self.scheduler,
                              placement=self.placement or Placement.resident(self.device))

    def _text_encoder(self) -> TextEncoder:
        self._require("text_encoder", "tokenizer")
        return TextEncoder(tokenizer=self.tokenizer, model=self.text_encoder,
                           placement=self._placement(self.text_encoder))

    def _face_encoder(self) -> FaceEncoder:
        self._require("siglip")
        return FaceEncoder(siglip=self.siglip, placement=self._placement(self.siglip.model))

    # ---- stages, one at a time ------------------------------------------------------

    def encode_prompt(self, prompt: str, negative_prompt: str | None = None) -> tuple[PromptEmbeddings, PromptEmbeddings]:
        """(negative, positive) T5 embeddings, each (1, 226, D_text); None means ""."""
        text = stages.encode_text(self._text_encoder(), prompt, negative_prompt,
                                  max_length=int(self.transformer.config.max_text_seq_length))
        return text.negative, text.positive

    def face_features(self, face_image: np.ndarray, arcface_embedding: np.ndarray | torch.Tensor,
                      mode: str = "as_released", *, feature_rounding: FeatureRounding | None = None
                      ) -> tuple[FaceFeatures, FaceFeatures]:
        """(unconditional, conditional) face features; see face_features.py."""
        rounding = numerics_for(mode, feature_rounding=feature_rounding).feature_rounding
        face = stages.face_features(self._face_encoder(), face_image, arcface_embedding, feature_rounding=rounding)
        return face.uncond, face.cond

    def fuse(self, negative: PromptEmbeddings, positive: PromptEmbeddings,
             uncond: FaceFeatures, cond: FaceFeatures, *, do_cfg: bool = True) -> Conditioning:
        """IITF once per run, batched as [uncond ; cond] (only cond without CFG)."""
        return stages.fuse(self.model, TextEncoding(negative=negative, positive=positive), uncond, cond, do_cfg=do_cfg)

    def initial_noise(self, height: int, width: int, num_frames: int,
                      generator: torch.Generator | None) -> torch.Tensor:
        """(1, F', C, H/8, W/8) float32 standard normal noise: the run's first random draw."""
        settings = SamplingSettings(height=height, width=width, num_frames=num_frames)
        return stages.initial_noise(self.model, settings, generator)

    def face_latent(self, face_image: np.ndarray, height: int, width: int, num_frames: int,
                    generator: torch.Generator | None) -> FaceLatent:
        """The shallow face latent; draws the run's second random tensor."""
        settings = SamplingSettings(height=height, width=width, num_frames=num_frames)
        return stages.face_latent(self.model, face_image, settings, generator)

    def denoise(self, conditioning: Conditioning, face_latent: FaceLatent, noise: torch.Tensor, *,
                height: int, width: int, num_frames: int, num_inference_steps: int, guidance_scale: float,
                use_dynamic_cfg: bool = True, mode: str = "as_released", generator: torch.Generator | None,
                on_step: OnStep | None = None, cfg_schedule: CfgSchedule | None = None,
                scheduler: str = "dpm", identity: IdentityControls = IdentityControls(),
                model_call: ModelCall = batched_call) -> torch.Tensor:
        """The sampling loop on a fresh scheduler; returns the final float32 latents.
        `model_call` is the speed options' step call (echovideo_core.acceleration.accelerated)."""
        settings = SamplingSettings(
            height=height, width=width, num_frames=num_frames, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, scheduler=scheduler,
            cfg_schedule=_numerics(mode, use_dynamic_cfg, None, cfg_schedule).cfg_schedule)
        return stages.denoise(self.model, conditioning, face_latent, noise, settings, generator=generator,
                              on_step=on_step, identity=identity, model_call=model_call)

    def decode(self, latents: torch.Tensor, *, dtype: torch.dtype = torch.float16,
               tiling: bool = False, slicing: bool = False) -> DecodedFrames:
        """Frames (B, F, H, W, 3) in [0, 1]; the pipeline's VAE is left untouched."""
        return stages.decode(self.model, latents, dtype=dtype, tiling=tiling, slicing=slicing)

    # ---- the whole run ------------------------------------------------------------------

    def __call__(
        self, face_image: np.ndarray, arcface_embedding: np.ndarray | torch.Tensor, prompt: str, *,
        negative_prompt: str | None = None, height: int = 480, width: int = 848, num_frames: int = 49,
        num_inference_steps: int = 50, guidance_scale: float = 6.0, use_dynamic_cfg: bool = True,
        generator: torch.Generator | None = None, output_type: str = "np",
        decode_dtype: torch.dtype = torch.float16, callback: OnStep | None = None,
        mode: str = "as_released", allow_long_video: bool = False,
        vae_tiling: bool = False, vae_slicing: bool = False,
        feature_rounding: FeatureRounding | None = None, cfg_schedule: CfgSchedule | None = None,
        scheduler: str = "dpm", identity_strength: float = 1.0, identity_steps: tuple[int, int] | None = None,
        identity_guidance: float | None = None, model_call: ModelCall = batched_call, free_encoders: bool = False,
    ) -> EchoVideoPipelineOutput:
        """Generate one video. `face_image` is the prepared (H, W, 3) uint8 identity image,
        `arcface_embedding` the raw (512,) or (1, 512) ArcFace vector (numpy or torch).
        `callback(step, total, latents)` runs after every step (progress, preview, interrupt).
        `use_dynamic_cfg=False` is `cfg_schedule="constant"`; `scheduler` is "dpm" (the
        release's) or "ddim". `identity_strength`, `identity_steps` (A, B) timesteps and
        `identity_guidance` are the identity controls (identity.py), off by default.
        `model_call` runs the DiT for a step (the speed options: echovideo_core.acceleration).
        `free_encoders=True` drops T5 and SigLIP once encoded (`free_encoders()`): less peak memory,
        but this pipeline then cannot encode another prompt.
        """
        numerics = _numerics(mode, use_dynamic_cfg, feature_rounding, cfg_schedule)
        check_options(output_type, decode_dtype, prompt, negative_prompt)
        settings = SamplingSettings(
            height=height, width=width, num_frames=num_frames, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, cfg_schedule=numerics.cfg_schedule, scheduler=scheduler,
            allow_long_video=allow_long_video,
        ).check(vae_temporal_factor(self.vae))
        face_image = check_identity_image(face_image)
        check_arcface(arcface_embedding)
        check_generator(generator)
        identity = IdentityControls(strength=identity_strength, steps=identity_steps, guidance=identity_guidance)
        self._require("text_encoder", "tokenizer", "siglip")

        text = stages.encode_text(self._text_encoder(), prompt, negative_prompt,
                                  max_length=int(self.transformer.config.max_text_seq_length))
        face = stages.face_features(self._face_encoder(), face_image, arcface_embedding,
                                    feature_rounding=numerics.feature_rounding)
        if free_encoders:
            self.free_encoders()
        conditioning = stages.fuse(self.model, text, face.uncond, face.cond, do_cfg=uses_guidance(guidance_scale))
        latents = stages.sample(self.model, conditioning, face_image, settings, generator=generator, on_step=callback,
                                identity=identity, model_call=model_call)
        latents = latents.to(self.device)
        if output_type == "latent":
            return EchoVideoPipelineOutput(frames=None, latents=latents)
        frames = stages.decode(self.model, latents, dtype=decode_dtype, tiling=vae_tiling, slicing=vae_slicing).frames
        return EchoVideoPipelineOutput(frames=frames.numpy() if output_type == "np" else frames, latents=latents)


def _numerics(mode: str, use_dynamic_cfg: bool, feature_rounding: str | None, cfg_schedule: str | None):
    """The call's two switches from the preset, the old `use_dynamic_cfg` flag and overrides."""
    if not isinstance(use_dynamic_cfg, bool):
        raise InvalidInputError(f"use_dynamic_cfg must be True or False, got {use_dynamic_cfg!r}")
    schedule = cfg_schedule or (None if use_dynamic_cfg else "constant")
    return numerics_for(mode, feature_rounding=feature_rounding, cfg_schedule=schedule)
