"""Native-path nodes: EchoVideo on core's CogVideoX MODEL, CONDITIONING, VAE and samplers.

Core loads the DiT (Load Diffusion Model), T5 (Load CLIP, type cogvideox) and the VAE
(Load VAE); Apply Identity turns them into EchoVideo; core's SamplerCustomAdvanced samples
(with the release's DPM update, sigmas, noise and dynamic CFG from the nodes below, or any
core sampler) and core's VAE Decode decodes. See docs/native_comfyui.md.
"""
from __future__ import annotations

from echovideo_core.numerics import CFG_SCHEDULES

from . import native_adapter as native

SEED = ("INT", {"default": 42, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                "tooltip": "The run's seed: use the same one in EchoVideo Noise to get the pack sampler's random draws."})


class EchoVideoApplyIdentityNative:
    CATEGORY = "EchoVideo/native"
    DESCRIPTION = ("Makes core's CogVideoX model EchoVideo: fuses each guidance branch's T5 tokens with the face (IITF, "
                   "layers read from the model's own file), sets the face latent as concat latent, the release's "
                   "rotary tables and sampling; returns an empty video latent of the chosen size.")
    RETURN_TYPES = ("MODEL", "CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("model", "positive", "negative", "latent")
    OUTPUT_TOOLTIPS = ("The EchoVideo DiT (patched clone).", "Fused tokens + face latent (conditional branch).",
                       "Fused tokens of a black face + zero ArcFace, same face latent (unconditional branch).",
                       "Empty video latent (plain VAE latents) for the sampler.")
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The EchoVideo transformer file from Load Diffusion Model."}),
            "positive": ("CONDITIONING", {"tooltip": "CLIP Text Encode of the prompt (Load CLIP, type cogvideox)."}),
            "negative": ("CONDITIONING", {"tooltip": "CLIP Text Encode of the negative prompt (the release: empty)."}),
            "face": ("ECHO_FACE", {"tooltip": "From EchoVideo Face Encode."}),
            "vae": ("VAE", {"tooltip": "The CogVideoX VAE from Load VAE (encodes the face latent)."}),
            "width": ("INT", {"default": 848, "min": 16, "max": 2048, "step": 16, "tooltip": "Multiple of 16; trained: 848, 640, 480."}),
            "height": ("INT", {"default": 480, "min": 16, "max": 2048, "step": 16, "tooltip": "Multiple of 16; trained: 480, 640, 848."}),
            "length": ("INT", {"default": 49, "min": 1, "max": 49, "step": 4, "tooltip": "Frames: 4k+1, at most 49."}),
            "seed": SEED,
        }}

    def apply(self, model, positive, negative, face, vae, width, height, length, seed):
        return native.apply_identity(model, positive, negative, face, vae, width=width, height=height,
                                     length=length, seed=seed)


class EchoVideoDPMSampler:
    CATEGORY = "EchoVideo/native"
    DESCRIPTION = "The release's sampler (CogVideoXDPMScheduler, 2nd-order, v-prediction) for SamplerCustom / SamplerCustomAdvanced."
    RETURN_TYPES = ("SAMPLER",)
    RETURN_NAMES = ("sampler",)
    OUTPUT_TOOLTIPS = ("For SamplerCustomAdvanced (with EchoVideo Scheduler, Noise and Dynamic CFG: the release's numbers).",)
    FUNCTION = "get_sampler"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def get_sampler(self):
        return (native.release_dpm_sampler(),)


class EchoVideoScheduler:
    CATEGORY = "EchoVideo/native"
    DESCRIPTION = "The release's timesteps (trailing spacing) as sigmas; core's 'simple' scheduler equals them when steps divides 1000."
    RETURN_TYPES = ("SIGMAS",)
    RETURN_NAMES = ("sigmas",)
    OUTPUT_TOOLTIPS = ("One sigma per release timestep, then 0.",)
    FUNCTION = "get_sigmas"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model from EchoVideo Apply Identity (native)."}),
            "steps": ("INT", {"default": 50, "min": 1, "max": 1000, "tooltip": "Denoising steps (the release: 50)."}),
        }}

    def get_sigmas(self, model, steps):
        return (native.release_sigmas(model, steps),)


class EchoVideoDynamicCFG:
    CATEGORY = "EchoVideo/native"
    DESCRIPTION = ("The release's dynamic CFG: the guidance scale rises from 1 to 1 + cfg over the run. timestep "
                   "evaluates it at the timestep value (the release's numbers), step_index at the step index.")
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The model with the dynamic guidance schedule (use it in CFGGuider).",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model from EchoVideo Apply Identity (native)."}),
            "cfg_schedule": (list(CFG_SCHEDULES), {"default": "timestep", "tooltip": "timestep: evaluated at the timestep value (the release's numbers); step_index: at the step index (a smooth ramp); constant: plain CFG."}),
        }}

    def patch(self, model, cfg_schedule):
        return (native.with_dynamic_cfg(model, cfg_schedule),)


class EchoVideoNoise:
    CATEGORY = "EchoVideo/native"
    DESCRIPTION = "The release's initial noise for a seed (drawn frame-major, as the pack sampler draws it)."
    RETURN_TYPES = ("NOISE",)
    RETURN_NAMES = ("noise",)
    OUTPUT_TOOLTIPS = ("For SamplerCustomAdvanced.",)
    FUNCTION = "get_noise"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"noise_seed": SEED}}

    def get_noise(self, noise_seed):
        return (native.ReleaseNoise(noise_seed),)


NODE_CLASS_MAPPINGS = {
    "EchoVideoApplyIdentityNative": EchoVideoApplyIdentityNative,
    "EchoVideoDPMSampler": EchoVideoDPMSampler,
    "EchoVideoScheduler": EchoVideoScheduler,
    "EchoVideoDynamicCFG": EchoVideoDynamicCFG,
    "EchoVideoNoise": EchoVideoNoise,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "EchoVideoApplyIdentityNative": "EchoVideo Apply Identity (native)",
    "EchoVideoDPMSampler": "EchoVideo DPM Sampler (as released)",
    "EchoVideoScheduler": "EchoVideo Scheduler (as released)",
    "EchoVideoDynamicCFG": "EchoVideo Dynamic CFG",
    "EchoVideoNoise": "EchoVideo Noise (as released)",
}
