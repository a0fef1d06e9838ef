"""Which stage functions of `echovideo_core.stages` a call runs (traced, nothing replaced)."""
from __future__ import annotations

import sys
from typing import Callable

from echovideo_core import stages

STAGE_NAMES = ("encode_text", "face_features", "encode_face", "fuse", "initial_noise", "face_latent", "denoise",
               "sample", "decode")


def stages_run_by(call: Callable[[], object]) -> set[str]:
    """Names of the stage functions entered while `call()` runs."""
    codes = {getattr(stages, name).__code__: name for name in STAGE_NAMES}
    seen: set[str] = set()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            seen.add(codes[frame.f_code])

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return seen
