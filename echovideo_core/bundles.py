"""Loaded models as typed bundles: what the stage functions take.

Each bundle is a frozen dataclass of ordinary torch modules plus the `Placement` that says
where they wait and run. The Python pipeline builds them from its attributes on every call
(so replacing `pipe.transformer` takes effect), the ComfyUI loader nodes return them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from diffusers import AutoencoderKLCogVideoX
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from transformers import T5EncoderModel, T5Tokenizer

from echovideo_core.loading.siglip import SiglipEncoder
from echovideo_core.placement import Placement
from echovideo_core.transformer import EchoVideoTransformer3DModel

if TYPE_CHECKING:  # pragma: no cover
    from echovideo_core.face.prepare import FacePreparer


@dataclass(frozen=True)
class EchoVideoModel:
    """The DiT, the VAE and the scheduler whose settings every run copies (never steps).

    vae is kept in float32 unless loaded otherwise; decode casts a temporary copy.
    source: where the transformer came from (for messages).
    """

    transformer: EchoVideoTransformer3DModel
    vae: AutoencoderKLCogVideoX
    scheduler: SchedulerMixin
    placement: Placement
    source: str = ""


@dataclass(frozen=True)
class TextEncoder:
    """T5 encoder and its sentencepiece tokenizer."""

    tokenizer: T5Tokenizer
    model: T5EncoderModel
    placement: Placement


@dataclass(frozen=True)
class FaceEncoder:
    """The SigLIP vision tower of the high-level face path (no face detection)."""

    siglip: SiglipEncoder
    placement: Placement


@dataclass(frozen=True)
class FaceModels:
    """Face preparation (insightface + parser + RetinaFace) and the SigLIP vision tower."""

    preparer: "FacePreparer"
    siglip: SiglipEncoder
    placement: Placement

    @property
    def encoder(self) -> FaceEncoder:
        return FaceEncoder(siglip=self.siglip, placement=self.placement)
