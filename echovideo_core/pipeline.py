"""`EchoVideoPipeline`: face image + ArcFace + prompt -> video frames, stage by stage.

The call reads like a table of contents: check inputs -> encode the prompt -> face
features -> fuse once -> noise and face latent (in the release's RNG order) -> denoise ->
decode. Each stage is a public method returning a small frozen dataclass, so the ComfyUI
nodes can run and cache them one by one.

Numeric modes: `as_released` (default) reproduces the release exactly, quirks included
(bfloat16 rounding of the SigLIP pixels and of the ArcFace vector, dynamic CFG evaluated at
the timestep value); `corrected` drops the roundings and uses the step index.
No state carries over between calls: the scheduler is rebuilt per run and the VAE is never
cast in place.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
from diffusers.utils.torch_utils import randn_tensor
from transformers import T5EncoderModel, T5Tokenizer

from echovideo_core.decode import DecodedFrames, decode_latents
from echovideo_core.errors import MissingModelFilesError, require_files
from echovideo_core.face_features import (FaceFeatures, SiglipEncoder, check_arcface, check_identity_image,
                                          face_features, load_siglip, unconditional_face_features)
from echovideo_core.face_latent import FaceLatent, encode_face_latent, vae_spatial_factor
from echovideo_core.guidance import NumericMode, guidance_scales
from echovideo_core.loading import load_transformer
from echovideo_core.rotary import latent_frame_count, rotary_embeddings
from echovideo_core.sampling import ModelCall, OnStep, SamplingInputs, batched_call, denoise, make_scheduler
from echovideo_core.text import PromptEmbeddings, encode_prompt, load_text_encoder, load_tokenizer
from echovideo_core.transformer import EchoVideoTransformer3DModel
from echovideo_core.validation import check_guidance, check_num_frames, check_options, check_size, check_steps

logger = logging.getLogger(__name__)

COMPONENT_FOLDERS: dict[str, str] = {
    "transformer": "transformer", "vae": "vae", "text_encoder": "text_encoder",
    "tokenizer": "tokenizer", "scheduler": "scheduler", "siglip": "clip_visual_encoder",
}


@dataclass(frozen=True)
class EchoVideoPipelineOutput:
    """frames: (B, F, H, W, 3) float32 in [0, 1] (numpy for "np", torch for "pt", None for
    "latent"); latents: (B, F', C, H/8, W/8) float32 final latents, before any decode cast."""

    frames: np.ndarray | torch.Tensor | None
    latents: torch.Tensor


@dataclass(frozen=True)
class Conditioning:
    """tokens: (2B, 226, D_text) fused IITF tokens [uncond ; cond] with CFG, (B, 226, D_text)
    without; the transformer reads them in place of T5 at every step."""

    tokens: torch.Tensor
    do_cfg: bool


class EchoVideoPipeline:
    """The generation pipeline over the released folder layout (components as attributes)."""

    def __init__(self, *, transformer: EchoVideoTransformer3DModel, vae: AutoencoderKLCogVideoX,
                 text_encoder: T5EncoderModel | None, tokenizer: T5Tokenizer | None,
                 scheduler: CogVideoXDPMScheduler, siglip: SiglipEncoder | None) -> None:
        """Components as loaded. The encoders may be None for a pipeline that only samples and
        decodes (the ComfyUI nodes encode in nodes of their own); the stages that need them
        then say so."""
        if not isinstance(scheduler, CogVideoXDPMScheduler):
            raise TypeError(f"EchoVideo samples with CogVideoXDPMScheduler, got {type(scheduler).__name__}")
        self.transformer = transformer
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.siglip = siglip

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, *, torch_dtype: torch.dtype = torch.float32,
        vae_dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
        transformer: EchoVideoTransformer3DModel | None = None, vae: AutoencoderKLCogVideoX | None = None,
        text_encoder: T5EncoderModel | None = None, tokenizer: T5Tokenizer | None = None,
        scheduler: CogVideoXDPMScheduler | None = None, siglip: SiglipEncoder | None = None,
    ) -> "EchoVideoPipeline":
        """Load offline from a released folder; a component passed in is used as is.

        `model_index.json` is not read (the release's names its own classes); the layout is
        fixed: transformer/, vae/, text_encoder/, tokenizer/, scheduler/, clip_visual_encoder/.
        The VAE is kept in `vae_dtype` (float32: decoding in float32 then uses the
        checkpoint's own weights; other decode dtypes run on a temporary copy). With `device`
        every module moves there; without it nothing moves (loaded parts stay on the CPU).
        """
        root = Path(folder)
        needed = {"transformer": transformer, "vae": vae, "text_encoder": text_encoder,
                  "tokenizer": tokenizer, "scheduler": scheduler, "siglip": siglip}
        missing = [COMPONENT_FOLDERS[n] for n, c in needed.items() if c is None and not (root / COMPONENT_FOLDERS[n]).is_dir()]
        if missing:
            raise MissingModelFilesError(
                f"EchoVideo model folder {root} lacks {', '.join(f'{m}/' for m in missing)} "
                f"(expected {', '.join(f'{m}/' for m in COMPONENT_FOLDERS.values())})"
            )
        if transformer is None:
            transformer = load_transformer(root / "transformer", torch_dtype=torch_dtype)
        if vae is None:
            require_files(root / "vae", ["config.json"], what="VAE")
            vae = AutoencoderKLCogVideoX.from_pretrained(str(root / "vae"), torch_dtype=vae_dtype,
                                                         local_files_only=True).eval().requires_grad_(False)
        if text_encoder is None:
            text_encoder = load_text_encoder(root / "text_encoder", torch_dtype)
        if tokenizer is None:
            tokenizer = load_tokenizer(root / "tokenizer")
        if scheduler is None:
            require_files(root / "scheduler", ["scheduler_config.json"], what="scheduler")
            scheduler = CogVideoXDPMScheduler.from_pretrained(str(root / "scheduler"), local_files_only=True)
        if siglip is None:
            siglip = load_siglip(root / "clip_visual_encoder", torch_dtype)
        pipe = cls(transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                   scheduler=scheduler, siglip=siglip)
        return pipe if device is None else pipe.to(device)

    def to(self, device: torch.device | str) -> "EchoVideoPipeline":
        """Move every module to `device` (dtypes unchanged)."""
        for module in (self.transformer, self.vae, self.text_encoder, self.siglip and self.siglip.model):
            if module is not None:
                module.to(device)
        return self

    def apply_lora(self, path: str | Path, strength: float = 1.0) -> "EchoVideoPipeline":
        """Merge an EchoVideo LoRA (or a peft/kohya export) into this pipeline's transformer.

        The merge is in place and lasts for this pipeline object: to change the strength,
        load the transformer again (a merge keeps no copy of the 11 GB of base weights).
        """
        from echovideo_core.training.lora import apply_lora

        apply_lora(self.transformer, path, strength)
        return self

    def _require(self, *names: str) -> None:
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise MissingModelFilesError(f"this pipeline was built without {', '.join(missing)}: load them to run this stage")

    @property
    def device(self) -> torch.device:
        return self.transformer.device

    # ---- stages -------------------------------------------------------------------------

    def encode_prompt(self, prompt: str, negative_prompt: str | None = None) -> tuple[PromptEmbeddings, PromptEmbeddings]:
        """(negative, positive) T5 embeddings, each (1, 226, D_text); None means ""."""
        self._require("text_encoder", "tokenizer")
        length = int(self.transformer.config.max_text_seq_length)
        negative = encode_prompt(self.tokenizer, self.text_encoder, negative_prompt or "", length)
        positive = encode_prompt(self.tokenizer, self.text_encoder, prompt, length)
        return negative, positive

    def face_features(self, face_image: np.ndarray, arcface_embedding: np.ndarray | torch.Tensor,
                      mode: NumericMode = "as_released") -> tuple[FaceFeatures, FaceFeatures]:
        """(unconditional, conditional) face features; see face_features.py."""
        self._require("siglip")
        as_released = mode == "as_released"
        cond = face_features(self.siglip, face_image, arcface_embedding, as_released=as_released)
        uncond = unconditional_face_features(self.siglip, np.shape(face_image), as_released=as_released)
        return uncond, cond

    @torch.no_grad()
    def fuse(self, negative: PromptEmbeddings, positive: PromptEmbeddings,
             uncond: FaceFeatures, cond: FaceFeatures, *, do_cfg: bool = True) -> Conditioning:
        """IITF once per run, batched as [uncond ; cond] (only cond without CFG)."""
        if do_cfg:
            text = torch.cat([negative.embeds, positive.embeds])
            siglip = torch.cat([uncond.siglip, cond.siglip])
            arcface = torch.cat([uncond.arcface, cond.arcface])
        else:
            text, siglip, arcface = positive.embeds, cond.siglip, cond.arcface
        device = self.device
        tokens = self.transformer.fuse(text.to(device), siglip.to(device), arcface.to(device))
        return Conditioning(tokens=tokens, do_cfg=do_cfg)

    def initial_noise(self, height: int, width: int, num_frames: int,
                      generator: torch.Generator | None) -> torch.Tensor:
        """(1, F', C, H/8, W/8) float32 standard normal noise: the run's first random draw."""
        factor = vae_spatial_factor(self.vae)
        frames = latent_frame_count(num_frames, self.vae.config.temporal_compression_ratio)
        channels = int(self.transformer.config.in_channels) // 2
        shape = (1, frames, channels, height // factor, width // factor)
        noise = randn_tensor(shape, generator=generator, device=self.device, dtype=torch.float32)
        return noise * self.scheduler.init_noise_sigma

    def face_latent(self, face_image: np.ndarray, height: int, width: int, num_frames: int,
                    generator: torch.Generator | None) -> FaceLatent:
        """The shallow face latent; draws the run's second random tensor."""
        return encode_face_latent(self.vae, face_image, height=height, width=width,
                                  num_frames=num_frames, generator=generator)

    def denoise(self, conditioning: Conditioning, face_latent: FaceLatent, noise: torch.Tensor, *,
                height: int, width: int, num_frames: int, num_inference_steps: int, guidance_scale: float,
                use_dynamic_cfg: bool, mode: NumericMode, generator: torch.Generator | None,
                on_step: OnStep | None = None, model_call: ModelCall = batched_call) -> torch.Tensor:
        """The sampling loop on a fresh scheduler; returns the final float32 latents.
        `model_call` is the speed options' step call (echovideo_core.acceleration.accelerated)."""
        scheduler = make_scheduler(self.scheduler.config, num_inference_steps)
        rotary = None
        if self.transformer.config.use_rotary_positional_embeddings:
            rotary = rotary_embeddings(self.transformer.config, height=height, width=width,
                                       num_frames=num_frames, device=self.device)
        scales = guidance_scales(guidance_scale, scheduler.timesteps.tolist(),
                                 use_dynamic_cfg=use_dynamic_cfg, mode=mode)
        inputs = SamplingInputs(noise=noise, face_latent=face_latent.latents, conditioning=conditioning.tokens,
                                rotary=rotary, guidance=scales, do_cfg=conditioning.do_cfg)
        return denoise(self.transformer, scheduler, inputs, generator=generator, on_step=on_step, model_call=model_call)

    def decode(self, latents: torch.Tensor, *, dtype: torch.dtype = torch.float16,
               tiling: bool = False, slicing: bool = False) -> DecodedFrames:
        """Frames (B, F, H, W, 3) in [0, 1]; the pipeline's VAE is left untouched."""
        return decode_latents(self.vae, latents, dtype=dtype, tiling=tiling, slicing=slicing)

    # ---- the whole run ------------------------------------------------------------------

    def __call__(
        self, face_image: np.ndarray, arcface_embedding: np.ndarray | torch.Tensor, prompt: str, *,
        negative_prompt: str | None = None, height: int = 480, width: int = 848, num_frames: int = 49,
        num_inference_steps: int = 50, guidance_scale: float = 6.0, use_dynamic_cfg: bool = True,
        generator: torch.Generator | None = None, output_type: str = "np",
        decode_dtype: torch.dtype = torch.float16, callback: OnStep | None = None,
        mode: NumericMode = "as_released", allow_long_video: bool = False,
        vae_tiling: bool = False, vae_slicing: bool = False, model_call: ModelCall = batched_call,
    ) -> EchoVideoPipelineOutput:
        """Generate one video. `face_image` is the prepared (H, W, 3) uint8 identity image,
        `arcface_embedding` the raw (512,) or (1, 512) ArcFace vector (numpy or torch).
        `callback(step, total, latents)` runs after every step (progress, preview, interrupt).
        """
        check_options(mode, output_type, decode_dtype, prompt, negative_prompt)
        check_size(height, width)
        check_num_frames(num_frames, allow_long_video=allow_long_video,
                         temporal_compression=self.vae.config.temporal_compression_ratio)
        check_steps(num_inference_steps)
        check_guidance(guidance_scale)
        face_image = check_identity_image(face_image)
        check_arcface(arcface_embedding)

        do_cfg = guidance_scale > 1.0
        negative, positive = self.encode_prompt(prompt, negative_prompt)
        uncond, cond = self.face_features(face_image, arcface_embedding, mode)
        conditioning = self.fuse(negative, positive, uncond, cond, do_cfg=do_cfg)
        noise = self.initial_noise(height, width, num_frames, generator)  # RNG draw 1
        face = self.face_latent(face_image, height, width, num_frames, generator)  # RNG draw 2
        latents = self.denoise(conditioning, face, noise, height=height, width=width, num_frames=num_frames,
                               num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                               use_dynamic_cfg=use_dynamic_cfg, mode=mode, generator=generator,
                               on_step=callback, model_call=model_call)
        if output_type == "latent":
            return EchoVideoPipelineOutput(frames=None, latents=latents)
        frames = self.decode(latents, dtype=decode_dtype, tiling=vae_tiling, slicing=vae_slicing).frames
        return EchoVideoPipelineOutput(frames=frames.numpy() if output_type == "np" else frames, latents=latents)
