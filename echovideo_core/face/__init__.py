"""Face preparation (docs/design.md section 5): photo -> identity image + raw ArcFace vector.

    from echovideo_core.face import FacePreparer
    result = FacePreparer("models/face").prepare("photo.jpg")
    result.identity_image  # (512, 512, 3) uint8; result.arcface  # (512,) float32, raw

Names are imported lazily so that `import echovideo_core.face` does not load onnxruntime,
insightface or torch until a name that needs them is used.
"""
from __future__ import annotations

from echovideo_core.lazy_exports import lazy_getattr

_EXPORTS: dict[str, str] = {
    "FacePreparer": "echovideo_core.face.prepare",
    "FaceResult": "echovideo_core.face.prepare",
    "unconditional_face": "echovideo_core.face.prepare",
    "prepare_many": "echovideo_core.face.multi",
    "MultiFaceResult": "echovideo_core.face.multi",
    "align_face": "echovideo_core.face.align",
    "arcface_template": "echovideo_core.face.align",
    "mask_identity": "echovideo_core.face.mask",
    "KEPT_CLASSES": "echovideo_core.face.mask",
    "REMOVED_CLASSES": "echovideo_core.face.mask",
    "load_rgb": "echovideo_core.face.image",
    "debug_picture": "echovideo_core.face.debug",
    "find_face_models": "echovideo_core.loading.face",
    "NoFaceError": "echovideo_core.face.errors",
    "ImageLoadError": "echovideo_core.face.errors",
    "FaceModelsMissingError": "echovideo_core.face.errors",
    "FaceWeightsMismatchError": "echovideo_core.face.errors",
    "encode_siglip": "echovideo_core.face_features",
    "load_siglip": "echovideo_core.face_features",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(globals(), _EXPORTS)
