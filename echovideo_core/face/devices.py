"""Which device and ONNX providers run the face models: the GPU when one is there."""
from __future__ import annotations

import onnxruntime
import torch


def onnx_providers() -> list[str]:
    """CUDA (with CPU behind it) when this onnxruntime build offers it, else CPU."""
    available = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def torch_device() -> torch.device:
    """Device for the parser / RetinaFace: the GPU when torch sees one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
