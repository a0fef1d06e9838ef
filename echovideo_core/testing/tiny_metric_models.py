"""Tiny stand-ins for the evaluation's optional models, and faces the tiny detector finds.

Used by the tests and docs/identity_study.md; nothing is downloaded, every writer is seeded.

- `write_tiny_fid_inception(path)`: the FID Inception's full key layout (23.9 M random
  values, the real network's size, since FID's layout has no smaller variant), its
  BatchNorm statistics measured on seeded noise so that the features vary with the image
  (with arbitrary statistics they fade to a constant through the 40-odd layers).
- `write_tiny_curricularface(path)`: an IR backbone of the CurricularFace key layout with one
  residual unit per stage (the loader reads the depth from the keys).
- `write_tiny_clip(folder)`: a transformers CLIP folder (2 layers, 32 wide, 32 px images)
  with a character-level CLIP tokenizer, loadable offline like a real checkpoint.
- `marker_face(...)`: a photo / frame holding one face for the tiny SCRFD (a magenta 32 x 32
  cell at the detector's input scale, see tiny_face_models) inside an "identity pattern": a
  ring of coloured 16 px blocks drawn from `identity` (a seed). The tiny ArcFace pools 14 x 14
  blocks of the aligned crop, so two seeds give two different embeddings; the pattern's
  green channel stays high so no block looks magenta to the detector.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from echovideo_core.testing.tiny_face_models import _randomise

MAGENTA = (255, 0, 255)


def write_tiny_fid_inception(path: str | os.PathLike, seed: int = 0) -> Path:
    from echovideo_core.evaluation.inception import FIDInceptionV3

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FIDInceptionV3()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # running statistics = plain average over the calibration
        with torch.no_grad():
            model.train()(torch.rand(4, 3, 139, 139) * 2 - 1)
    torch.save(model.state_dict(), str(path))
    return path


def write_tiny_curricularface(path: str | os.PathLike, seed: int = 0) -> Path:
    from echovideo_core.evaluation.curricularface import IRBackbone

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_randomise(IRBackbone(units=(1, 1, 1, 1)), seed), str(path))
    return path


def write_tiny_clip(folder: str | os.PathLike, seed: int = 0) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in "abcdefghijklmnopqrstuvwxyz0123456789,.;'-":
        vocab[char], vocab[char + "</w>"] = len(vocab), len(vocab) + 1
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=4),
        projection_dim=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(str(folder))
    return folder


def marker_face(identity: int = 0, cell: tuple[int, int] = (7, 10), size: tuple[int, int] = (640, 640),
                background: int = 128) -> np.ndarray:
    """(H, W, 3) uint8 with one tiny-detector face at grid `cell` (col, row) of a 640-wide
    detector input; `size` (W, H) other than 640 wide scales the grid with the picture."""
    width, height = size
    unit = 32 * width / 640
    photo = np.full((height, width, 3), background, np.uint8)
    rng = np.random.default_rng(identity)
    col, row = cell
    left, top = round((col - 0.5) * unit), round((row - 0.5) * unit)
    block = max(1, round(unit / 2))
    for by in range(4):
        for bx in range(4):
            colour = rng.integers(0, 256, 3)
            colour[1] = max(colour[1], 160)
            photo[top + by * block : top + (by + 1) * block, left + bx * block : left + (bx + 1) * block] = colour
    photo[round(row * unit) : round((row + 1) * unit), round(col * unit) : round((col + 1) * unit)] = MAGENTA
    return photo
