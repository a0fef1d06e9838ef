"""Tiny stand-ins for the face models, with the released signatures and key layouts.

Used by the tests and by `echovideo tiny-kit`; nothing is downloaded. Every writer is
deterministic for a given seed.

- `write_tiny_antelopev2(folder)`: `scrfd_10g_bnkps.onnx` and `glintr100.onnx` with the input
  / output signatures insightface's model router expects (SCRFD: one NCHW input with free
  height / width, 9 outputs = scores, boxes, key points at strides 8, 16, 32 with 2 anchors;
  ArcFace: (N, 3, 112, 112) -> (N, 512)).
  The tiny SCRFD is a *marker detector* whose output can be reasoned about: only the
  stride-32 head can fire, and a 32 x 32 cell (in the 640 x 640 detector input) fires when it
  is saturated magenta. Per cell, on the detector's normalised RGB values v = (p - 127.5) / 128
  averaged over the cell: score = sigmoid(4 (R - 2G + B) - 10) (pure magenta: 0.997; white,
  black, grey, red, skin: < 0.12); box half-size d = 1 + 2 (B - R) cells (magenta: d = 1,
  a 64 px box; bluer markers give larger, lower-scored boxes), centred on the cell centre;
  the 5 key points are `MARKER_LAYOUT * d * 32` around the cell centre, a uniformly scaled
  copy of the 512 x 512 ArcFace template, so `align_face` maps them exactly onto it.
  The tiny ArcFace averages 14 x 14 blocks of the 112 x 112 crop and applies a seeded random
  linear map to 512 values: different crops give different raw embeddings.
- `write_tiny_parser(path)`: BiSeNet state dict with facexlib's key names and shapes.
- `write_tiny_retinaface(path)`: RetinaFace-ResNet50 state dict with the released key names
  and shapes. Its heads are set so the output is predictable: by default the class head
  never fires (zero weights, bias favouring background), so photos without a marker give
  "no face"; `always_fires=True` makes every stride-32 anchor of size 256 a face (score ~1,
  box = the anchor) whose landmarks form `MARKER_LAYOUT` around the anchor centre.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from echovideo_core.face.align import arcface_template

SCRFD_FILE = "scrfd_10g_bnkps.onnx"
ARCFACE_FILE = "glintr100.onnx"
STRIDES = (8, 16, 32)
ANCHORS = 2
# Key points relative to the box centre, in units of the box half-size: the 512 template
# centred on (256, 320) and divided by 256 (eyes at y = -0.33, mouth at y = +0.40).
MARKER_LAYOUT = (arcface_template(512) - np.array([256.0, 320.0])) / 256.0
_OPSET = [helper.make_opsetid("", 13)]


def _head(name: str, stride: int, per_anchor: int, weight_rgb: np.ndarray, bias: np.ndarray, sigmoid: bool):
    """Conv (kernel = stride = s) -> [Sigmoid] -> NHWC -> (-1, per_anchor) nodes + initializers."""
    out_channels = ANCHORS * per_anchor
    weight = np.zeros((out_channels, 3, stride, stride), dtype=np.float32)
    weight[:] = (weight_rgb.reshape(out_channels, 3, 1, 1) / (stride * stride)).astype(np.float32)
    inits = [
        numpy_helper.from_array(weight, f"{name}_w"),
        numpy_helper.from_array(bias.astype(np.float32).reshape(out_channels), f"{name}_b"),
        numpy_helper.from_array(np.array([-1, per_anchor], dtype=np.int64), f"{name}_shape"),
    ]
    nodes = [helper.make_node("Conv", ["input.1", f"{name}_w", f"{name}_b"], [f"{name}_conv"],
                              kernel_shape=[stride, stride], strides=[stride, stride], name=f"conv_{name}")]
    last = f"{name}_conv"
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", [last], [f"{name}_sig"], name=f"sigmoid_{name}"))
        last = f"{name}_sig"
    nodes.append(helper.make_node("Transpose", [last], [f"{name}_nhwc"], perm=[0, 2, 3, 1], name=f"nhwc_{name}"))
    nodes.append(helper.make_node("Reshape", [f"{name}_nhwc", f"{name}_shape"], [name], name=f"flat_{name}"))
    return nodes, inits


def _scrfd_heads(stride: int) -> list[tuple[str, int, np.ndarray, np.ndarray, bool]]:
    fires = stride == 32
    score_w = np.tile([4.0, -8.0, 4.0], (ANCHORS, 1)) if fires else np.zeros((ANCHORS, 3))
    score_b = np.full(ANCHORS, -10.0 if fires else -20.0)
    dist_w = np.array([-2.0, 0.0, 2.0]) if fires else np.zeros(3)  # d = 1 + 2 (B - R)
    # distances l, t, r, b = d -/+ 0.5 so that the box is centred on the cell centre
    box_w = np.tile(np.stack([dist_w] * 4), (ANCHORS, 1))
    box_b = np.tile([0.5, 0.5, 1.5, 1.5], ANCHORS)
    kps_rows, kps_bias = [], []
    for point in MARKER_LAYOUT:
        for axis in (0, 1):
            kps_rows.append(point[axis] * dist_w)
            kps_bias.append(0.5 + point[axis])
    kps_w = np.tile(np.stack(kps_rows), (ANCHORS, 1))
    kps_b = np.tile(kps_bias, ANCHORS)
    return [
        (f"score_{stride}", 1, score_w, score_b, True),
        (f"bbox_{stride}", 4, box_w, box_b, False),
        (f"kps_{stride}", 10, kps_w, kps_b, False),
    ]


def tiny_scrfd_model() -> onnx.ModelProto:
    """The marker-detector SCRFD graph (see the module docstring)."""
    heads = {stride: _scrfd_heads(stride) for stride in STRIDES}
    nodes, inits, outputs = [], [], []
    for kind in range(3):  # insightface reads outputs as 3 scores, 3 boxes, 3 key-point sets
        for stride in STRIDES:
            name, per_anchor, weight, bias, sigmoid = heads[stride][kind]
            head_nodes, head_inits = _head(name, stride, per_anchor, weight, bias, sigmoid)
            nodes += head_nodes
            inits += head_inits
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"n{stride}", per_anchor]))
    graph_input = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])
    graph = helper.make_graph(nodes, "tiny_scrfd", [graph_input], outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=_OPSET, producer_name="echovideo-tiny")
    onnx.checker.check_model(model)
    return model


def tiny_arcface_model(seed: int = 0) -> onnx.ModelProto:
    """(N, 3, 112, 112) -> (N, 512): 14 x 14 average pooling, flatten, seeded random Gemm."""
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((512, 3 * 8 * 8)) / np.sqrt(192.0)).astype(np.float32)
    inits = [numpy_helper.from_array(weight, "fc_w"), numpy_helper.from_array(np.zeros(512, np.float32), "fc_b")]
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[14, 14], strides=[14, 14], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1, name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["683"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 512])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=_OPSET, producer_name="echovideo-tiny")
    onnx.checker.check_model(model)
    return model


def write_tiny_antelopev2(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Write `scrfd_10g_bnkps.onnx` and `glintr100.onnx` into `folder`; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(tiny_scrfd_model(), str(folder / SCRFD_FILE))
    onnx.save(tiny_arcface_model(seed), str(folder / ARCFACE_FILE))
    return folder


def _randomise(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Seeded random values for every parameter and BatchNorm statistic (finite outputs)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=generator)
        elif key.endswith("running_mean") or key.endswith(".bias"):
            state[key] = 0.05 * torch.randn(value.shape, generator=generator)
        elif value.ndim == 1:  # BatchNorm gamma
            state[key] = 0.5 + 0.5 * torch.rand(value.shape, generator=generator)
        else:  # conv weights: He-scaled so activations stay in range through the depth
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=generator) * (1.0 / fan_in) ** 0.5
    return state


def write_tiny_parser(path: str | os.PathLike, seed: int = 0) -> Path:
    """BiSeNet (19 classes) state dict with facexlib's key names / shapes, random values."""
    from echovideo_core.face.bisenet import BiSeNet

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_randomise(BiSeNet(19), seed), str(path))
    return path


def write_tiny_retinaface(path: str | os.PathLike, seed: int = 0, always_fires: bool = False) -> Path:
    """RetinaFace-ResNet50 state dict with the released key names / shapes, random values."""
    from echovideo_core.face.retinaface import RetinaFace

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = _randomise(RetinaFace(), seed)
    # landmark = centre + b * 0.1 * anchor size  ->  b = layout * (size / 2) / (0.1 * size)
    offsets = torch.tensor(MARKER_LAYOUT.reshape(-1) * 5.0, dtype=torch.float32)
    for level in range(3):
        for head in ("ClassHead", "BboxHead", "LandmarkHead"):
            state[f"{head}.{level}.conv1x1.weight"].zero_()
            state[f"{head}.{level}.conv1x1.bias"].zero_()
        # per anchor (background, face); anchor 0 is the smaller size of the level
        face = 10.0 if (always_fires and level == 2) else -10.0
        state[f"ClassHead.{level}.conv1x1.bias"].copy_(torch.tensor([-face, face, 10.0, -10.0]))
        state[f"LandmarkHead.{level}.conv1x1.bias"].copy_(torch.cat([offsets, offsets]))
    torch.save(state, str(path))
    return path


def write_tiny_face_models(models_dir: str | os.PathLike, seed: int = 0, with_retinaface: bool = True) -> Path:
    """A face-model folder: antelopev2/, parsing_bisenet.pth and (unless with_retinaface is
    False: the fallback is then off, and 110 MB are saved) detection_Resnet50_Final.pth."""
    models_dir = Path(models_dir)
    write_tiny_antelopev2(models_dir / "antelopev2", seed)
    write_tiny_parser(models_dir / "parsing_bisenet.pth", seed)
    if with_retinaface:
        write_tiny_retinaface(models_dir / "detection_Resnet50_Final.pth", seed)
    return models_dir
