"""EchoVideo Sampler: fused conditioning + face latent -> video latents (LATENT).

LATENT: {"samples": (B, C, F', H/8, W/8) float32}, ComfyUI's convention: plain VAE latents in
its video axis order (core VAE Decode, TrimVideoLatent, latent upscales take it), F' = (frames - 1) / 4 + 1.
"""
from __future__ import annotations

from echovideo_core.latent_convention import comfy_latent_samples
from echovideo_core.stages import DYNAMIC_CFG_MODES, sample

from . import comfy_adapter as comfy


class EchoVideoSampler:
    CATEGORY = "EchoVideo"
    DESCRIPTION = "Denoises a video of the encoded person (CogVideoX DPM sampler, classifier-free guidance, the face latent at every step)."
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Video latents (B, C, F', H/8, W/8), plain VAE latents: EchoVideo Decode or core VAE Decode.",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("ECHO_MODEL", {"tooltip": "From Load EchoVideo Model."}),
            "conditioning": ("ECHO_COND", {"tooltip": "From EchoVideo IITF Fuse."}),
            "face": ("ECHO_FACE", {"tooltip": "The same face: its image is VAE-encoded into the face latent."}),
            "width": ("INT", {"default": 848, "min": 16, "max": 2048, "step": 16, "tooltip": "Multiple of 16; trained: 848, 640, 480."}),
            "height": ("INT", {"default": 480, "min": 16, "max": 2048, "step": 16, "tooltip": "Multiple of 16; trained: 480, 640, 848."}),
            "frames": ("INT", {"default": 49, "min": 1, "max": 49, "step": 4, "tooltip": "4k+1 frames, at most 49 (about 3 s at 16 fps)."}),
            "steps": ("INT", {"default": 50, "min": 1, "max": 500, "tooltip": "Denoising steps."}),
            "cfg": ("FLOAT", {"default": 6.0, "min": 0.0, "max": 30.0, "step": 0.1, "round": 0.01, "tooltip": "Guidance scale; 1 or less turns guidance off."}),
            "dynamic_cfg": (list(DYNAMIC_CFG_MODES), {"default": "as_released", "tooltip": "as_released: the release's schedule (evaluated at the timestep value); corrected: at the step index; off: constant cfg."}),
            "seed": ("INT", {"default": 42, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True, "tooltip": "Same seed and settings give the same video."}),
            "scheduler": (["CogVideoXDPM"], {"default": "CogVideoXDPM", "tooltip": "The release's sampler (2nd-order DPM, v-prediction)."}),
        }}

    def sample(self, model, conditioning, face, width, height, frames, steps, cfg, dynamic_cfg, seed, scheduler):
        latents = sample(model, conditioning, face, width=width, height=height, num_frames=frames, steps=steps,
                         guidance_scale=cfg, dynamic_cfg=dynamic_cfg, seed=seed,
                         on_step=comfy.step_callback(steps), make_room=comfy.make_room)
        comfy.release_cache()
        return ({"samples": comfy_latent_samples(latents, model.vae.config.scaling_factor)},)


NODE_CLASS_MAPPINGS = {"EchoVideoSampler": EchoVideoSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"EchoVideoSampler": "EchoVideo Sampler"}
