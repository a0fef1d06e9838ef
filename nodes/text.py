"""EchoVideo Text Encode: prompt + negative prompt -> T5 embeddings (ECHO_TEXT)."""
from __future__ import annotations

from echovideo_core.stages import encode_text
from echovideo_core.text import MAX_SEQUENCE_LENGTH

from . import comfy_adapter as comfy


class EchoVideoTextEncode:
    CATEGORY = "EchoVideo"
    DESCRIPTION = "Encodes the prompt and the negative prompt with T5 (226 tokens each; longer prompts are cut with a warning)."
    RETURN_TYPES = ("ECHO_TEXT", "CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("text", "positive", "negative")
    OUTPUT_TOOLTIPS = ("T5 embeddings of both prompts, for EchoVideo IITF Fuse.",
                       "The prompt's T5 embeddings as core CONDITIONING (for Apply Identity (native)).",
                       "The negative prompt's T5 embeddings as core CONDITIONING.")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text_encoder": ("ECHO_TEXT_ENCODER", {"tooltip": "From Load EchoVideo Text Encoder."}),
            "prompt": ("STRING", {"multiline": True, "default": "", "tooltip": "What the person does, the scene, the camera."}),
            "negative_prompt": ("STRING", {"multiline": True, "default": "", "tooltip": "Used by the unconditional guidance branch (the release uses an empty one)."}),
        }}

    def encode(self, text_encoder, prompt, negative_prompt):
        text = encode_text(text_encoder, prompt, negative_prompt, make_room=comfy.make_room)
        cut = [name for name, part in (("prompt", text.positive), ("negative prompt", text.negative)) if part.truncated]
        if cut:
            comfy.show_in_ui(f"{' and '.join(cut)} cut to {MAX_SEQUENCE_LENGTH} T5 tokens (the model's text length)")
        return (text, [[text.positive.embeds, {}]], [[text.negative.embeds, {}]])


NODE_CLASS_MAPPINGS = {"EchoVideoTextEncode": EchoVideoTextEncode}
NODE_DISPLAY_NAME_MAPPINGS = {"EchoVideoTextEncode": "EchoVideo Text Encode"}
