"""CurricularFace recognition (FaceSim-Cur): the IR-101 backbone, only when its weights exist.

Accepted file: `CurricularFace_Backbone.pth` (or `.safetensors`), the backbone state dict of
the CurricularFace release, read weights-only. Module names follow its face.evoLVe "IR" key
layout: `input_layer.{0 conv, 1 bn, 2 prelu}`, `body.N.shortcut_layer.*` and
`body.N.res_layer.{0 bn, 1 conv, 2 prelu, 3 conv, 4 bn}`, `output_layer.{0 bn, 3 linear,
4 bn1d}`. The depth is read from the file (IR-50: 3/4/14/3 units, IR-101: 3/13/30/3, ...),
so any IR depth of that layout loads; any other layout is refused with the key report.

Input: the 112 x 112 crop aligned on the standard ArcFace template (insightface's
`norm_crop`, the alignment recognition models are trained on), RGB scaled to [-1, 1]. No
flip averaging. Agreement with the release's own numbers is unverified here (no weights in
this environment).
"""
from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from echovideo_core.errors import CheckpointMismatchError, MissingModelFilesError
from echovideo_core.face.errors import FaceModelsMissingError, FaceWeightsMismatchError
from echovideo_core.loading.state_dict import assign_strict, empty_model, read_state_dict, strip_common_prefix

CURRICULARFACE_FILES = ("CurricularFace_Backbone.pth", "CurricularFace_Backbone.safetensors")
CROP_SIZE = 112
STAGE_DEPTHS = (64, 128, 256, 512)
IR_101_UNITS = (3, 13, 30, 3)


class BottleneckIR(nn.Module):
    """Pre-activation residual unit; the stride sits on the second convolution."""

    def __init__(self, cin: int, depth: int, stride: int):
        super().__init__()
        if cin == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut_layer(x) + self.res_layer(x)


class IRBackbone(nn.Module):
    """(B, 3, 112, 112) in [-1, 1] -> (B, 512) embedding; `units` per stage (IR-101 default)."""

    def __init__(self, units: tuple[int, int, int, int] = IR_101_UNITS):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        blocks, cin = [], 64
        for depth, count in zip(STAGE_DEPTHS, units):
            blocks += [BottleneckIR(cin, depth, 2)] + [BottleneckIR(depth, depth, 1) for _ in range(count - 1)]
            cin = depth
        self.body = nn.Sequential(*blocks)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.body(self.input_layer(x)))


def units_in(state: Mapping[str, torch.Tensor]) -> tuple[int, int, int, int]:
    """Units per stage read from `body.N.res_layer.1.weight` output channels."""
    depths: Counter[int] = Counter()
    for key, value in state.items():
        if re.fullmatch(r"body\.\d+\.res_layer\.1\.weight", key):
            depths[int(value.shape[0])] += 1
    units = tuple(depths.get(depth, 0) for depth in STAGE_DEPTHS)
    if min(units) < 1 or sum(units) != sum(depths.values()):
        raise FaceWeightsMismatchError(
            f"not an IR backbone state dict: residual units per depth {dict(depths)} (expected 64/128/256/512 stages)")
    return units  # type: ignore[return-value]


def load_curricularface(path: str | os.PathLike, device: torch.device | str = "cpu") -> IRBackbone:
    """The backbone in eval mode from a weights-only file, its depth read from the keys (so
    the file is read here, not through `load_face_weights`, which builds the model first)."""
    try:
        state = strip_common_prefix(read_state_dict(path)[0], ("module.",))
    except MissingModelFilesError as err:
        raise FaceModelsMissingError(str(err)) from err
    except CheckpointMismatchError as err:
        raise FaceWeightsMismatchError(str(err)) from err
    model = empty_model(lambda: IRBackbone(units_in(state)))
    assign_strict(model, state, what=f"CurricularFace backbone {os.fspath(path)} does not match the IR layout",
                  ignore_suffixes=("num_batches_tracked",), error=FaceWeightsMismatchError)
    return model.eval().requires_grad_(False).to(device)


def aligned_112(image: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
    """(112, 112, 3) crop on the standard ArcFace template (insightface's own alignment)."""
    from insightface.utils.face_align import norm_crop

    return norm_crop(np.ascontiguousarray(image), np.asarray(landmarks5, np.float32), image_size=CROP_SIZE)


@torch.no_grad()
def curricularface_embeddings(model: IRBackbone, crops: list[np.ndarray]) -> np.ndarray:
    """(N, 512) float64 embeddings of aligned RGB uint8 112 x 112 crops."""
    if not crops:
        return np.zeros((0, 512))
    param = next(model.parameters())
    batch = torch.stack([torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1) for crop in crops])
    batch = (batch.to(param.device, torch.float32) / 255.0 - 0.5) / 0.5
    return model(batch.to(param.dtype)).double().cpu().numpy()
