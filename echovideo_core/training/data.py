"""The prepared training cache: safetensors shards + `index.json`, read as a torch Dataset.

Layout written by `prepare.py` (one shard per source clip, never rewritten once finished):

    <root>/index.json                    settings, finished clips, skipped clips
    <root>/uncond.safetensors            text (226, D_text): T5 of ""; siglip (196, D_face): black image
    <root>/shards/clip_<n>_<hash>.safetensors
        latents        (W, F', C, h, w) float32  VAE latent sample x scaling factor, W windows
        face_latent    (C, h, w)        float32  the encoded face frame x scaling factor
        text           (226, D_text)    float32  T5 of the caption (no attention mask)
        siglip         (196, D_face)    float32  SigLIP last hidden state of the identity image
        arcface        (512,)           float32  raw ArcFace embedding
        identity_image (512, 512, 3)    uint8    the prepared identity image (for validation)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from echovideo_core.errors import EchoVideoError, InputFileError
from echovideo_core.face_latent import with_zero_frames
from echovideo_core.loading.state_dict import open_tensors, read_json, read_state_dict

INDEX_NAME = "index.json"
UNCOND_NAME = "uncond.safetensors"
SHARD_DIR = "shards"
CACHE_FORMAT = "echovideo-training-cache"
CACHE_VERSION = 1


class PreparedDataError(InputFileError):
    """The prepared folder is missing, incomplete or of another format; the message says which."""


def read_index(root: str | Path) -> dict[str, Any]:
    root = Path(root)
    path = root / INDEX_NAME
    if not path.is_file():
        raise PreparedDataError(f"{root} has no {INDEX_NAME}: run `echovideo prepare-data --out {root}` first",
                                path=root)
    try:
        index = read_json(path)
    except EchoVideoError as err:
        raise PreparedDataError(str(err), path=path) from err
    if index.get("format") != CACHE_FORMAT or index.get("version") != CACHE_VERSION:
        raise PreparedDataError(f"{path} is not an EchoVideo training cache v{CACHE_VERSION}", path=path)
    return index


@dataclass(frozen=True)
class SampleRef:
    """Where one training sample lives: a window of one clip's shard."""

    shard: Path
    window: int
    caption: str


def face_latent_frames(face: torch.Tensor, latent_frames: int) -> torch.Tensor:
    """(C, h, w) encoded face -> (F', C, h, w) with zero frames after it (docs/design.md, face latent)."""
    return with_zero_frames(face[None], latent_frames)


class PreparedDataset(torch.utils.data.Dataset):
    """Every (clip, window) of a prepared folder as one sample.

    Item: dict with index () int64 (position in this dataset: seeds the sample's noise),
    latents (F', C, h, w), face_latent (F', C, h, w), text (226, D_text),
    siglip (196, D_face), arcface (512,), all float32.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.index = read_index(self.root)
        self.samples: list[SampleRef] = []
        for clip in self.index["clips"]:
            shard = self.root / clip["shard"]
            if not shard.is_file():
                raise PreparedDataError(f"{shard} is listed in {INDEX_NAME} but missing")
            self.samples += [SampleRef(shard, w, clip["caption"]) for w in range(int(clip["windows"]))]
        if not self.samples:
            raise PreparedDataError(f"{self.root} holds no training samples (every clip was skipped?)")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ref = self.samples[i]
        with open_tensors(ref.shard) as f:
            latents = f.row("latents", ref.window)
            face = f.get("face_latent")
            item = {name: f.get(name).float() for name in ("text", "siglip", "arcface")}
        item["latents"] = latents.float()
        item["face_latent"] = face_latent_frames(face.float(), latents.shape[0])
        item["index"] = torch.tensor(i, dtype=torch.int64)
        return item

    def identity(self, i: int = 0) -> tuple[torch.Tensor, torch.Tensor, str]:
        """(identity image (512, 512, 3) uint8, raw ArcFace (512,), caption) of sample i."""
        ref = self.samples[i]
        with open_tensors(ref.shard) as f:
            return f.get("identity_image"), f.get("arcface").float(), ref.caption

    def unconditional(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(T5 of "" (1, 226, D_text), SigLIP of a black image (1, 196, D_face))."""
        path = self.root / UNCOND_NAME
        if not path.is_file():
            raise PreparedDataError(f"{path} is missing: the prepared folder is incomplete")
        tensors, _ = read_state_dict(path)
        return tensors["text"][None].float(), tensors["siglip"][None].float()

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.index.get("settings", {}))
