"""Reading the released face-model state dicts safely and checking them key by key.

`torch.load(weights_only=True)` (no pickled code) or safetensors only. Keys saved from a
DataParallel wrapper (`module.` prefix) are accepted. BatchNorm's `num_batches_tracked`
counters are ignored in the comparison: they do not affect inference and older saves lack them.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from echovideo_core.face.errors import FaceModelsMissingError, FaceWeightsMismatchError

_IGNORED_SUFFIX = "num_batches_tracked"


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a .pth / .pt (weights only) or .safetensors file, on the CPU."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FaceModelsMissingError(f"model file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path, device="cpu")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a weights file"
            raise FaceWeightsMismatchError(f"cannot read {path} as a weights-only state dict: {err}") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FaceWeightsMismatchError(f"{path} does not hold a flat state dict of tensors")
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return dict(state)


def _short(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Load `state` into `model`, raising FaceWeightsMismatchError on any key or shape mismatch."""
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.endswith(_IGNORED_SUFFIX)}
    given = {k: v.shape for k, v in state.items() if not k.endswith(_IGNORED_SUFFIX)}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = sorted(k for k in set(expected) & set(given) if tuple(expected[k]) != tuple(given[k]))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys: {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_short(unexpected)}")
        if wrong:
            parts.append(
                "wrong shapes: "
                + _short([f"{k} {tuple(given[k])} != {tuple(expected[k])}" for k in wrong])
            )
        raise FaceWeightsMismatchError(f"{what} does not match the released layout; " + "; ".join(parts))
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)
