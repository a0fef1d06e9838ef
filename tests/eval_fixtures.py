"""Fixtures of the evaluation tests: the tiny face models (SCRFD marker detector + ArcFace)
and the tiny optional metric models, written once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from echovideo_core.evaluation.curricularface import CURRICULARFACE_FILES
from echovideo_core.evaluation.inception import INCEPTION_FILE
from echovideo_core.testing.tiny_face_models import write_tiny_face_models
from echovideo_core.testing.tiny_metric_models import (marker_face, write_tiny_clip, write_tiny_curricularface,
                                                        write_tiny_fid_inception)

_ONCE: dict[str, object] = {}


@pytest.fixture(scope="session")
def face_models_dir(tmp_path_factory) -> Path:
    """antelopev2/ + parser only: every optional metric weight is absent."""
    if "face" not in _ONCE:
        _ONCE["face"] = write_tiny_face_models(tmp_path_factory.mktemp("eval_face"), with_retinaface=False)
    return _ONCE["face"]


@pytest.fixture(scope="session")
def full_models_dir(tmp_path_factory) -> Path:
    """The face models plus CurricularFace, the FID Inception and a CLIP, at their default names."""
    if "full" not in _ONCE:
        root = write_tiny_face_models(tmp_path_factory.mktemp("eval_full"), with_retinaface=False)
        write_tiny_curricularface(root / CURRICULARFACE_FILES[0])
        write_tiny_fid_inception(root / INCEPTION_FILE)
        write_tiny_clip(root / "clip")
        _ONCE["full"] = root
    return _ONCE["full"]


@pytest.fixture(scope="session")
def preparer(face_models_dir):
    from echovideo_core.face import FacePreparer

    if "preparer" not in _ONCE:
        _ONCE["preparer"] = FacePreparer(face_models_dir)
    return _ONCE["preparer"]


@pytest.fixture(scope="session")
def reference_photo():
    return marker_face(identity=0)
