"""EchoVideo's identity on a DiT that another front end runs (ComfyUI's native CogVideoX).

Two things make a CogVideoX-5B-I2V stack into EchoVideo: its text input is the 226 fused
IITF tokens instead of T5, and its 16 extra input channels hold the face latent. This
module computes both from a front end's T5 embeddings and VAE moments; the guidance
branches get what the release gives them (conditional: the face's SigLIP + ArcFace;
unconditional: black-image SigLIP + zero ArcFace; the same face latent for both).

Random draws follow the release: the sampler's noise is the run's first draw, the
face-latent sample the second, both from one CPU generator seeded with the run's seed.
"""
from __future__ import annotations

import numpy as np
import torch

from echovideo_core.errors import InvalidInputError
from echovideo_core.face_features import FaceFeatures
from echovideo_core.face_latent import preprocess_face
from echovideo_core.iitf import IITFLayers
from echovideo_core.native_sampling import release_noise, sample_latent_distribution


def check_text_embeds(text_embeds: torch.Tensor, layers: IITFLayers, branch: str) -> None:
    """The CONDITIONING must be T5-XXL padded to 226 tokens (ComfyUI: Load CLIP, type cogvideox)."""
    want = (layers.text_tokens, layers.text_width)
    if text_embeds.ndim != 3 or tuple(text_embeds.shape[1:]) != want:
        raise InvalidInputError(
            f"{branch} conditioning has shape {tuple(text_embeds.shape)}, EchoVideo needs (B, {want[0]}, {want[1]}): "
            "T5-XXL embeddings padded to 226 tokens (Load CLIP with type 'cogvideox', then CLIP Text Encode)")


@torch.no_grad()
def fuse_branch(layers: IITFLayers, text_embeds: torch.Tensor, features: FaceFeatures, branch: str) -> torch.Tensor:
    """(B, 226, D) T5 of one guidance branch + that branch's face features -> (B, 226, D) fused tokens."""
    check_text_embeds(text_embeds, layers, branch)
    batch = text_embeds.shape[0]
    siglip = features.siglip.expand(batch, -1, -1)
    arcface = features.arcface.expand(batch, -1)
    weight = layers.face_proj.weight
    tokens = layers.fuse(text_embeds.to(weight.device), siglip.to(weight.device), arcface.to(weight.device))
    return tokens.to(text_embeds.dtype)


def face_pixels(identity_image: np.ndarray, *, height: int, width: int, spatial_factor: int) -> torch.Tensor:
    """The identity image padded to the video's aspect, resized to H x W, in [-1, 1], as one
    video frame (1, 3, 1, H, W): what the release VAE-encodes for the face latent."""
    return preprocess_face(identity_image, height, width, spatial_factor).unsqueeze(2)


def face_latent_from_moments(moments: torch.Tensor, *, seed: int, latent_frames: int) -> torch.Tensor:
    """The face latent in ComfyUI's LATENT convention: plain VAE latents (1, C, F', h, w),
    frame 0 = one sample of the encoded face's distribution, the other frames zeros.

    moments: the VAE encoder's (1, 2C, 1, h, w) [mean ; logvar] of `face_pixels`. The sample
    is the second draw of the generator seeded with `seed`, after the (B=1) noise the
    release draws first, so it equals the pack sampler's face latent for the same seed.
    """
    channels = moments.shape[1] // 2
    generator = torch.Generator("cpu").manual_seed(int(seed))
    release_noise(generator, 1, channels, latent_frames, moments.shape[-2], moments.shape[-1])  # draw 1: the noise
    face = sample_latent_distribution(moments.cpu(), generator)  # draw 2, (1, C, 1, h, w)
    zeros = face.new_zeros((1, channels, latent_frames - 1, *face.shape[-2:]))
    return torch.cat([face, zeros], dim=2)
