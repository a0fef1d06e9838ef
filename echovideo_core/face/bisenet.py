"""BiSeNet 19-class face parser with a ResNet-18 backbone, loading the released weights.

Module attribute names follow the key names of facexlib's `parsing_bisenet.pth` (the state
dict is the contract): `cp.resnet.*`, `cp.arm16/arm32.*`, `cp.conv_head16/32.*`,
`cp.conv_avg.*`, `ffm.*`, `conv_out.*`, `conv_out16.*`, `conv_out32.*`. Only the main head
(`conv_out`) is used for the class map; the two auxiliary heads exist so the released file
loads strictly. No facexlib, no torchvision.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from echovideo_core.loading.face import load_face_weights
from echovideo_core.loading.state_dict import empty_model

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PARSER_SIZE = 512


class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, ks: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, ks, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet basic block; the shortcut gets a 1x1 conv + BN when shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))


class ResNet18(nn.Module):
    """Returns the 1/8, 1/16 and 1/32 feature maps (128, 256, 512 channels)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(64, 64, 1)
        self.layer2 = _stage(64, 128, 2)
        self.layer3 = _stage(128, 256, 2)
        self.layer4 = _stage(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinementModule(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        attention = torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean(dim=(2, 3), keepdim=True))))
        return feat * attention


class ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, ks=1, padding=0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        global_context = self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))
        sum32 = self.arm32(feat32) + global_context  # broadcast == nearest upsampling of 1x1
        up32 = self.conv_head32(F.interpolate(sum32, feat16.shape[2:], mode="nearest"))
        sum16 = self.arm16(feat16) + up32
        up16 = self.conv_head16(F.interpolate(sum16, feat8.shape[2:], mode="nearest"))
        return feat8, up16, up32


class FeatureFusionModule(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, ks=1, padding=0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        attention = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean(dim=(2, 3), keepdim=True)))))
        return feat * attention + feat


class BiSeNetOutput(nn.Module):
    def __init__(self, cin: int, cmid: int, num_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cmid)
        self.conv_out = nn.Conv2d(cmid, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """(B, 3, H, W) normalised RGB -> (B, num_classes, H, W) logits of the main head."""

    def __init__(self, num_classes: int = 19):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, num_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, num_classes)  # auxiliary (training) heads,
        self.conv_out32 = BiSeNetOutput(128, 64, num_classes)  # kept for strict loading

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat8, context8, _ = self.cp(x)
        logits = self.conv_out(self.ffm(feat8, context8))
        return F.interpolate(logits, x.shape[2:], mode="bilinear", align_corners=True)


def load_parser(path: str | os.PathLike, device: torch.device | str = "cpu") -> BiSeNet:
    """BiSeNet in eval mode from `parsing_bisenet.pth` (or a .safetensors copy), strictly."""
    return load_face_weights(empty_model(lambda: BiSeNet(num_classes=19)), path, "BiSeNet parser").eval().to(device)


@torch.no_grad()
def parse_face(model: BiSeNet, aligned: np.ndarray) -> np.ndarray:
    """(512, 512) int64 class map of an aligned (H, W, 3) uint8 RGB crop.

    Input is resized to 512 if needed, scaled to [0, 1], normalised with ImageNet mean/std;
    argmax over the 19 classes, resized back (nearest) to the crop size.
    """
    height, width = aligned.shape[:2]
    param = next(model.parameters())
    x = torch.from_numpy(np.ascontiguousarray(aligned)).to(param.device).permute(2, 0, 1)[None].float() / 255.0
    if (height, width) != (PARSER_SIZE, PARSER_SIZE):
        x = F.interpolate(x, (PARSER_SIZE, PARSER_SIZE), mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    logits = model(((x - mean) / std).to(param.dtype))
    classes = logits.argmax(dim=1, keepdim=True).float()
    if (height, width) != (PARSER_SIZE, PARSER_SIZE):
        classes = F.interpolate(classes, (height, width), mode="nearest")
    return classes[0, 0].long().cpu().numpy()
