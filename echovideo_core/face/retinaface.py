"""RetinaFace (ResNet-50) landmark detector, loading `detection_Resnet50_Final.pth`.

Used only as the fallback when insightface finds no face (docs/design.md 5.4). Attribute names
follow the released key layout: `body.*` (a torchvision-style ResNet-50 up to layer4),
`fpn.output1..3 / merge1..2`, `ssh1..3`, `ClassHead.i.conv1x1`, `BboxHead.i.conv1x1`,
`LandmarkHead.i.conv1x1`. Pre-processing as released: BGR float minus (104, 117, 123), the
photo at its own size; anchors from min sizes [[16, 32], [64, 128], [256, 512]] at strides
8, 16, 32; decoding with variances (0.1, 0.2). No facexlib, no torchvision.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from echovideo_core.loading.face import load_face_weights
from echovideo_core.loading.state_dict import empty_model

MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
BGR_MEAN = (104.0, 117.0, 123.0)
CONF_THRESHOLD = 0.97  # facexlib's face helper asks for 0.97
NMS_THRESHOLD = 0.4


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:  # the release's LeakyReLU has slope 0 for 256 channels: a plain ReLU
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50Body(nn.Module):
    """ResNet-50 without its classifier; returns layer2, layer3, layer4 (512/1024/2048 ch)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, layers = 64, []
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = [Bottleneck(cin, planes, stride)] + [Bottleneck(planes * 4, planes, 1) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*stage))
            cin = planes * 4
        self.layer1, self.layer2, self.layer3, self.layer4 = layers

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        c2 = self.layer2(x)
        c3 = self.layer3(c2)
        return [c2, c3, self.layer4(c3)]


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int], cout: int):
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], cout, 1)
        self.output2 = _conv_bn(in_channels[1], cout, 1)
        self.output3 = _conv_bn(in_channels[2], cout, 1)
        self.merge1 = _conv_bn(cout, cout, 3)
        self.merge2 = _conv_bn(cout, cout, 3)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        out3 = self.output3(feats[2])
        out2 = self.merge2(self.output2(feats[1]) + F.interpolate(out3, feats[1].shape[2:], mode="nearest"))
        out1 = self.merge1(self.output1(feats[0]) + F.interpolate(out2, feats[0].shape[2:], mode="nearest"))
        return [out1, out2, out3]


class SSH(nn.Module):
    """Context module: 3x3, "5x5" (two 3x3) and "7x7" (three 3x3) branches concatenated."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv3X3 = _conv_bn(cin, cout // 2, 3, relu=False)
        self.conv5X5_1 = _conv_bn(cin, cout // 4, 3)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, 3, relu=False)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4, 3)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, 3, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5_1 = self.conv5X5_1(x)
        branch7 = self.conv7x7_3(self.conv7X7_2(branch5_1))
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(branch5_1), branch7], dim=1))


class _Head(nn.Module):
    def __init__(self, cin: int, per_anchor: int, anchors: int = 2):
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(cin, anchors * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    """(B, 3, H, W) BGR minus mean -> (loc (B, N, 4), scores (B, N), landmarks (B, N, 10))."""

    def __init__(self):
        super().__init__()
        self.body = ResNet50Body()
        self.fpn = FPN((512, 1024, 2048), 256)
        self.ssh1, self.ssh2, self.ssh3 = SSH(256, 256), SSH(256, 256), SSH(256, 256)
        self.ClassHead = nn.ModuleList(_Head(256, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(256, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(256, 10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fpn = self.fpn(self.body(x))
        feats = [self.ssh1(fpn[0]), self.ssh2(fpn[1]), self.ssh3(fpn[2])]
        loc = torch.cat([head(f) for head, f in zip(self.BboxHead, feats)], dim=1)
        logits = torch.cat([head(f) for head, f in zip(self.ClassHead, feats)], dim=1)
        landmarks = torch.cat([head(f) for head, f in zip(self.LandmarkHead, feats)], dim=1)
        return loc, logits.softmax(dim=-1)[..., 1], landmarks


def prior_boxes(height: int, width: int) -> np.ndarray:
    """(N, 4) anchors (cx, cy, w, h), normalised by the image size, in the heads' order."""
    rows = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        fh, fw = math.ceil(height / step), math.ceil(width / step)
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = ((xs + 0.5) * step / width).reshape(-1, 1)
        cy = ((ys + 0.5) * step / height).reshape(-1, 1)
        per_size = [np.concatenate([cx, cy, np.full_like(cx, s / width), np.full_like(cy, s / height)], 1) for s in sizes]
        rows.append(np.stack(per_size, axis=1).reshape(-1, 4))
    return np.concatenate(rows, axis=0)


def decode_boxes(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """(N, 4) normalised x1, y1, x2, y2 from the regression output and the anchors."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[:, 2:] * VARIANCES[1])
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def decode_landmarks(pred: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """(N, 5, 2) normalised landmark positions from the (N, 10) regression output."""
    offsets = pred.reshape(-1, 5, 2) * VARIANCES[0] * priors[:, None, 2:]
    return priors[:, None, :2] + offsets


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression (IoU > threshold removed), best first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        top_left = np.maximum(boxes[best, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-12)
        order = rest[iou <= threshold]
    return keep


@dataclass(frozen=True)
class RetinaDetection:
    """One face: bbox (4,) x1 y1 x2 y2 pixels, score in [0, 1], landmarks5 (5, 2) pixels."""

    bbox: np.ndarray
    score: float
    landmarks5: np.ndarray


def load_retinaface(path: str | os.PathLike, device: torch.device | str = "cpu") -> RetinaFace:
    """RetinaFace in eval mode from `detection_Resnet50_Final.pth` (or .safetensors), strictly."""
    return load_face_weights(empty_model(lambda: RetinaFace()), path, "RetinaFace detector").eval().to(device)


@torch.no_grad()
def detect_retinaface(
    model: RetinaFace, rgb: np.ndarray, conf_threshold: float = CONF_THRESHOLD
) -> list[RetinaDetection]:
    """Faces in an (H, W, 3) uint8 RGB photo, best score first, after NMS."""
    height, width = rgb.shape[:2]
    param = next(model.parameters())
    bgr = rgb[..., ::-1].astype(np.float32) - np.array(BGR_MEAN, dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None].to(param.device, param.dtype)
    loc, scores, landmarks = (t[0].float().cpu().numpy() for t in model(x))
    priors = prior_boxes(height, width)
    scale = np.array([width, height], dtype=np.float64)
    boxes = decode_boxes(loc, priors) * np.tile(scale, 2)
    points = decode_landmarks(landmarks, priors) * scale
    selected = np.where(scores > conf_threshold)[0]
    keep = selected[nms(boxes[selected], scores[selected], NMS_THRESHOLD)] if selected.size else selected
    return [RetinaDetection(boxes[i], float(scores[i]), points[i]) for i in keep]


def centre_face(detections: list[RetinaDetection], height: int, width: int) -> RetinaDetection:
    """The detection whose box centre is closest to the photo centre (the release's choice)."""
    centre = np.array([width / 2.0, height / 2.0])
    distances = [np.linalg.norm((d.bbox[:2] + d.bbox[2:]) / 2.0 - centre) for d in detections]
    return detections[int(np.argmin(distances))]
