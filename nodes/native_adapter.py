"""The native path's only contact with ComfyUI core: model patches, the face-latent VAE
call, the sampler, the noise and the sigmas, each built from `echovideo_core` math.

Imported by nodes/native.py when a node runs, never at pack import; every ComfyUI module is
imported inside the function that needs it. What core does with an EchoVideo file, and why
each patch exists, is in docs/native_comfyui.md:
- rotary: core's CogVideoX 1.0 grid is crop-free; `_get_rotary_emb` is replaced by the
  release's tables (diffusers 0.31 crop on the 45 x 30 base grid, echovideo_core.rotary);
- model_sampling: core's CogVideoX sampling (V_PREDICTION_DDPM) hands the DiT x unscaled,
  which only x_t-space samplers can use; ours divides by sqrt(1 + sigma^2) (v-prediction,
  zero-SNR), so the DiT reads x_t under every core sampler (euler, dpmpp_2m, ...) too;
- latent_format: core picks its scale from the head count (0.7 only for >= 48 heads); the
  patch sets the CogVideoX-5B VAE's 0.7 for any size.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

from echovideo_core.loading.scheduler import RELEASE_SCHEDULER_CONFIG
from echovideo_core.errors import InvalidInputError
from echovideo_core.iitf import IITFLayers
from echovideo_core.loading.iitf import read_iitf_layers
from echovideo_core.native_sampling import (dynamic_guided, release_dpm_sample, release_noise,
                                            release_stream_after_inputs)
from echovideo_core.geometry import VAE_SPATIAL_COMPRESSION, VAE_TEMPORAL_COMPRESSION
from echovideo_core.rotary import rotary_embeddings
from echovideo_core.sampling import make_scheduler

logger = logging.getLogger(__name__)

VAE_SCALING_FACTOR = 0.7  # the CogVideoX-5B VAE's (and EchoVideo's) scaling_factor


def model_file(model) -> Path:
    """The file core's Load Diffusion Model read this MODEL from (it records its loader call)."""
    init = getattr(model, "cached_patcher_init", None)
    if not init or not init[1] or not isinstance(init[1][0], (str, Path)):
        raise InvalidInputError(
            "this MODEL does not say which file it came from: load the EchoVideo transformer with core's "
            "Load Diffusion Model (its identity layers are read from that file)")
    return Path(init[1][0])


def compute_dtype(model) -> torch.dtype:
    """The dtype the DiT computes in (its manual-cast dtype for fp8 weights)."""
    base = model.model
    return getattr(base, "manual_cast_dtype", None) or base.get_dtype()


@functools.lru_cache(maxsize=2)
def _iitf(path: str, mtime: float, dtype: torch.dtype) -> IITFLayers:
    logger.info("EchoVideo: reading the identity layers of %s", path)
    return read_iitf_layers(path, dtype=dtype)


def iitf_layers(model) -> IITFLayers:
    """The IITF layers of the MODEL's own file (only those tensors are read; cached)."""
    path = model_file(model)
    return _iitf(str(path), path.stat().st_mtime, compute_dtype(model))


class ReleaseRotary:
    """Stands in for the DiT's `_get_rotary_emb(h, w, t, device)`: the release's tables for a
    (t, h, w) patch grid, i.e. a video of (t-1)*4+1 frames of h*16 x w*16 pixels."""

    def __init__(self, head_dim: int, patch_size: int) -> None:
        self.config = {"attention_head_dim": head_dim, "patch_size": patch_size}
        self.patch_size = patch_size

    def __call__(self, h: int, w: int, t: int, device=None):
        pixels = VAE_SPATIAL_COMPRESSION * self.patch_size
        frames = (t - 1) * VAE_TEMPORAL_COMPRESSION + 1
        return rotary_embeddings(self.config, height=h * pixels, width=w * pixels, num_frames=frames, device=device)


def _sampling(model):
    import comfy.model_sampling as ms

    class EchoVideoSampling(ms.ModelSamplingDiscrete, ms.V_PREDICTION):
        """v-prediction over the zero-SNR scaled-linear schedule, input scaled to x_t."""

    return EchoVideoSampling(model.model.model_config, zsnr=True)


def patch_model(model):
    """A clone of core's CogVideoX MODEL that is the release's EchoVideo DiT."""
    import comfy.latent_formats

    diffusion = model.get_model_object("diffusion_model")
    if getattr(diffusion, "patch_size_t", None) is not None or not getattr(diffusion, "use_rotary_positional_embeddings", False):
        raise InvalidInputError("this MODEL is not a CogVideoX 1.0 DiT with rotary embeddings (EchoVideo's kind)")
    patched = model.clone()
    patched.add_object_patch("diffusion_model._get_rotary_emb",
                             ReleaseRotary(diffusion.attention_head_dim, diffusion.patch_size))
    patched.add_object_patch("model_sampling", _sampling(model))
    latent_format = comfy.latent_formats.CogVideoX1_5()
    latent_format.scale_factor = VAE_SCALING_FACTOR
    patched.add_object_patch("latent_format", latent_format)
    return patched


@torch.no_grad()
def encode_moments(vae, pixels: torch.Tensor) -> torch.Tensor:
    """(1, 3, 1, H, W) pixels in [-1, 1] -> the VAE encoder's (1, 2C, 1, h, w) [mean ; logvar]
    (core's VAE Encode returns only the mean; the release samples the distribution)."""
    import comfy.model_management as mm

    mm.load_models_gpu([vae.patcher])
    encoder = getattr(vae.first_stage_model, "encoder", None)
    if encoder is None or not hasattr(vae.first_stage_model, "temporal_compression_ratio"):
        raise InvalidInputError("this VAE is not a CogVideoX VAE (Load VAE with the CogVideoX / EchoVideo vae file)")
    out = encoder(pixels.to(vae.device, vae.vae_dtype))
    return (out[0] if isinstance(out, tuple) else out).float().cpu()


def set_concat_latent(conditioning, tokens: list[torch.Tensor], face_latent: torch.Tensor):
    """CONDITIONING with each entry's tokens replaced and the face latent as concat latent."""
    import node_helpers

    with_latent = node_helpers.conditioning_set_values(conditioning, {"concat_latent_image": face_latent})
    return [[new, entry[1]] for new, entry in zip(tokens, with_latent)]


def _model_sampling(model):
    """The sampling object of the model a k-diffusion sampler function is given."""
    return model.inner_model.model_patcher.get_model_object("model_sampling")


def release_dpm_sampler():
    """A core SAMPLER running the release's CogVideoXDPMScheduler update; its per-step noise
    continues the run's random stream (seed = the sampler node's noise seed) as the release's does."""
    import comfy.samplers

    def sample_release_dpm(model, x, sigmas, extra_args=None, callback=None, disable=None):
        extra_args = extra_args or {}
        sampling = _model_sampling(model)
        timesteps = [int(sampling.timestep(s.reshape(1)).item()) for s in sigmas[:-1]]
        s_in = x.new_ones([x.shape[0]])
        generator = release_stream_after_inputs(int(extra_args.get("seed", 0) or 0), x.shape)

        def predict(x_ve, sigma):
            return model(x_ve, sigma * s_in, **extra_args)

        def on_step(i, total, denoised, latents):
            if callback is not None:
                callback({"x": latents, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})

        return release_dpm_sample(predict, x, sigmas, timesteps, RELEASE_SCHEDULER_CONFIG, generator=generator,
                                  on_step=on_step).to(x.dtype)

    return comfy.samplers.KSAMPLER(sample_release_dpm)


def release_sigmas(model, steps: int) -> torch.Tensor:
    """The release's trailing timesteps for `steps` as core sigmas (+ the final 0)."""
    sampling = model.get_model_object("model_sampling")
    timesteps = make_scheduler(RELEASE_SCHEDULER_CONFIG, steps).timesteps
    sigmas = sampling.sigma(timesteps.float()).float().cpu()
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def with_dynamic_cfg(model, cfg_schedule: str):
    """A clone whose guidance uses the release's dynamic CFG schedule (a post-CFG function:
    it recomputes the mix of the two denoised branches with the step's scale)."""
    patched = model.clone()

    def dynamic_cfg(args):
        uncond, cond = args.get("uncond_denoised"), args.get("cond_denoised")
        if uncond is None:  # cfg 1: no unconditional branch
            return args["denoised"]
        sigma = args["sigma"].reshape(-1)[:1]
        sigmas = args["model_options"]["transformer_options"]["sample_sigmas"].to(sigma.device)
        timestep = int(args["model"].model_sampling.timestep(sigma).item())
        step = int((sigmas[:-1] - sigma).abs().argmin().item())
        return dynamic_guided(uncond, cond, float(args["cond_scale"]), timestep=timestep, step_index=step,
                              num_steps=len(sigmas) - 1, cfg_schedule=cfg_schedule)

    patched.set_model_sampler_post_cfg_function(dynamic_cfg)
    return patched


class ReleaseNoise:
    """Core NOISE drawing the release's first tensor: (B, F', C, h, w) standard normal from
    a CPU generator seeded with `seed`, laid out as ComfyUI's (B, C, F', h, w)."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def generate_noise(self, input_latent):
        samples = input_latent["samples"]
        if samples.ndim != 5:
            raise InvalidInputError(f"EchoVideo Noise needs a video LATENT (B, C, F', h, w), got {tuple(samples.shape)}")
        batch, channels, frames, height, width = samples.shape
        generator = torch.Generator("cpu").manual_seed(self.seed)
        return release_noise(generator, batch, channels, frames, height, width)


def apply_identity(model, positive, negative, face, vae, *, width: int, height: int, length: int, seed: int):
    """(patched MODEL, positive, negative, empty LATENT) for one identity and video size.

    Checks come first (size, frames, conditioning shape); then the IITF layers of the
    MODEL's file fuse each branch once, and the face latent is encoded with `vae`.
    """
    from echovideo_core.native_identity import face_latent_from_moments, face_pixels, fuse_branch
    from echovideo_core.geometry import latent_frame_count
    from echovideo_core.validation import check_num_frames, check_size

    check_size(height, width)
    check_num_frames(length)
    latent_frames = latent_frame_count(length)
    layers = iitf_layers(model)
    tokens_pos = [fuse_branch(layers, entry[0], face.cond, "positive") for entry in positive]
    tokens_neg = [fuse_branch(layers, entry[0], face.uncond, "negative") for entry in negative]
    spatial = int(vae.spacial_compression_encode())
    moments = encode_moments(vae, face_pixels(face.identity_image, height=height, width=width, spatial_factor=spatial))
    face_latent = face_latent_from_moments(moments, seed=seed, latent_frames=latent_frames)
    empty = torch.zeros((1, face_latent.shape[1], latent_frames, height // spatial, width // spatial))
    return (patch_model(model), set_concat_latent(positive, tokens_pos, face_latent),
            set_concat_latent(negative, tokens_neg, face_latent), {"samples": empty})
