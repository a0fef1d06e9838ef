"""EchoVideo Face Encode: photo(s) of one person -> identity (ECHO_FACE) + its preview."""
from __future__ import annotations

from echovideo_core.interchange import identity_image_batch, images_to_photos
from echovideo_core.numerics import FEATURE_ROUNDINGS, feature_rounding_from
from echovideo_core.stages import encode_face

from . import comfy_adapter as comfy


class EchoVideoFaceEncode:
    CATEGORY = "EchoVideo"
    DESCRIPTION = ("Finds, aligns and masks the face (several photos of one person are combined), then computes "
                   "its ArcFace and SigLIP features. Fallbacks (RetinaFace, whole image) are reported in `report`.")
    RETURN_TYPES = ("ECHO_FACE", "IMAGE", "STRING")
    RETURN_NAMES = ("face", "identity_image", "report")
    OUTPUT_TOOLTIPS = ("Identity image, ArcFace and SigLIP features for Fuse and the Sampler.",
                       "The 512x512 masked, aligned face the model sees.",
                       "How the face was found and any warnings.")
    FUNCTION = "encode"
    REQUIRES = ("insightface", "onnx", "onnxruntime", "cv2")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "face_models": ("ECHO_FACE_MODELS", {"tooltip": "From Load EchoVideo Face Models."}),
            "image": ("IMAGE", {"tooltip": "One photo, or a batch of photos of the same person."}),
            "allow_no_face": ("BOOLEAN", {"default": False, "tooltip": "When no face is found, use the whole image instead of failing."}),
            "face_index": ("INT", {"default": 0, "min": 0, "max": 64, "tooltip": "Which face when a photo shows several (0 = largest)."}),
        }, "optional": {
            "numeric_mode": (list(FEATURE_ROUNDINGS), {"default": "bfloat16", "tooltip": "Feature rounding. bfloat16: round the SigLIP pixels and the ArcFace vector to bfloat16 as the release does; float32: no rounding."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, numeric_mode="bfloat16"):
        return comfy.valid_choice(feature_rounding_from, numeric_mode)  # older workflows: as_released / corrected

    def encode(self, face_models, image, allow_no_face, face_index, numeric_mode="bfloat16"):
        face = encode_face(face_models, images_to_photos(image), allow_no_face=allow_no_face, face_index=face_index,
                           feature_rounding=feature_rounding_from(numeric_mode), make_room=comfy.make_room)
        report = "\n".join([f"face found by: {face.method}", *face.warnings])
        if face.warnings:
            comfy.show_in_ui(report)
        return (face, identity_image_batch(face.identity_image), report)


NODE_CLASS_MAPPINGS = {"EchoVideoFaceEncode": EchoVideoFaceEncode}
NODE_DISPLAY_NAME_MAPPINGS = {"EchoVideoFaceEncode": "EchoVideo Face Encode"}
