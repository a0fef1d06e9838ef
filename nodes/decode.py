"""EchoVideo Decode: LATENT -> IMAGE frames (B*F, H, W, 3) float 0..1 for Preview / SaveVideo / VHS."""
from __future__ import annotations

from echovideo_core.dtypes import PRECISIONS, precision_dtype
from echovideo_core.interchange import frames_to_images, model_latents
from echovideo_core.stages import decode

from . import comfy_adapter as comfy


class EchoVideoDecode:
    CATEGORY = "EchoVideo"
    DESCRIPTION = "Decodes EchoVideo latents with the CogVideoX VAE into frames (16 fps). Cancel is checked between decoder blocks."
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("Video frames, one IMAGE per frame.",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("ECHO_MODEL", {"tooltip": "From Load EchoVideo Model (its VAE decodes)."}),
            "latent": ("LATENT", {"tooltip": "From EchoVideo Sampler or a core sampler (plain VAE latents)."}),
            "precision": (list(PRECISIONS), {"default": "fp16", "tooltip": "Decode precision (the release decodes in fp16)."}),
            "tiling": ("BOOLEAN", {"default": False, "tooltip": "Decode in tiles: less memory, slightly slower."}),
        }}

    def decode(self, model, latent, precision, tiling):
        vae = model.vae.config
        latents = model_latents(latent["samples"], scaling_factor=vae.scaling_factor, channels=vae.latent_channels)
        frames = decode(model, latents, dtype=precision_dtype(precision), tiling=tiling,
                        check=comfy.check_interrupt, make_room=comfy.make_room).frames
        comfy.release_cache()
        return (frames_to_images(frames),)


NODE_CLASS_MAPPINGS = {"EchoVideoDecode": EchoVideoDecode}
NODE_DISPLAY_NAME_MAPPINGS = {"EchoVideoDecode": "EchoVideo Decode"}
