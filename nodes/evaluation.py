"""EchoVideo Identity Score: generated frames + the identity -> per-frame similarity plot + averages."""
from __future__ import annotations

from echovideo_core.evaluation.identity_score import identity_score


class EchoVideoIdentityScore:
    CATEGORY = "EchoVideo"
    DESCRIPTION = ("Measures how well the frames keep the identity: ArcFace similarity of each scored frame's face to "
                   "the encoded face (frames without a face are marked as misses, never scored 0), Identity Average / "
                   "Variation, copy-paste SSIM, head-pose spread and dynamic degree.")
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("plot", "scores")
    OUTPUT_TOOLTIPS = ("Per-frame similarity plot; red crosses mark frames without a face.",
                       "The averages and notes, as text.")
    FUNCTION = "score"
    REQUIRES = ("matplotlib", "skimage")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "face_models": ("ECHO_FACE_MODELS", {"tooltip": "From Load EchoVideo Face Models (its detector finds the faces)."}),
            "face": ("ECHO_FACE", {"tooltip": "The identity the video was generated from (EchoVideo Face Encode)."}),
            "frames": ("IMAGE", {"tooltip": "The generated frames (EchoVideo Decode)."}),
            "scored_frames": ("INT", {"default": 32, "min": 1, "max": 1024, "tooltip": "How many evenly spaced frames are scored."}),
            "fps": ("FLOAT", {"default": 16.0, "min": 1.0, "max": 120.0, "step": 1.0, "tooltip": "Frame rate (motion is measured at about 8 fps)."}),
        }}

    def score(self, face_models, face, frames, scored_frames, fps):
        result = identity_score(face_models.preparer.detector, face, frames, scored_frames=scored_frames, fps=fps)
        return (result.plot, result.text)


NODE_CLASS_MAPPINGS = {"EchoVideoIdentityScore": EchoVideoIdentityScore}
NODE_DISPLAY_NAME_MAPPINGS = {"EchoVideoIdentityScore": "EchoVideo Identity Score"}
