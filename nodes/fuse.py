"""EchoVideo IITF Fuse: face + text -> the DiT's 226 conditioning tokens (ECHO_COND)."""
from __future__ import annotations

from echovideo_core.stages import fuse

from . import comfy_adapter as comfy


class EchoVideoIITFFuse:
    CATEGORY = "EchoVideo"
    DESCRIPTION = ("Identity Image-Text Fusion: merges the ArcFace, SigLIP and T5 features into 226 tokens, once for "
                   "both guidance branches (not at every step).")
    RETURN_TYPES = ("ECHO_COND",)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("Fused tokens [unconditional ; conditional] for the Sampler.",)
    FUNCTION = "fuse"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("ECHO_MODEL", {"tooltip": "From Load EchoVideo Model (the fusion layers live in the DiT)."}),
            "face": ("ECHO_FACE", {"tooltip": "From EchoVideo Face Encode."}),
            "text": ("ECHO_TEXT", {"tooltip": "From EchoVideo Text Encode."}),
        }}

    def fuse(self, model, face, text):
        return (fuse(model, text, face.uncond, face.cond, make_room=comfy.make_room),)


NODE_CLASS_MAPPINGS = {"EchoVideoIITFFuse": EchoVideoIITFFuse}
NODE_DISPLAY_NAME_MAPPINGS = {"EchoVideoIITFFuse": "EchoVideo IITF Fuse"}
