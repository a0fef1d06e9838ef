"""Identity controls: trade identity against motion and prompt-following at sampling time.

Off by default (the release's numbers stay bit-identical). Three knobs, each about the
*face* part of the conditioning:

- `strength` S scales the face's contribution to the fused tokens:
  `tokens = text_only + S * (face_and_text - text_only)`, where `text_only` is the fusion
  of the prompt with the "no face" features the model was trained with for condition
  dropout (SigLIP of a black image, zero ArcFace). S = 0 gives the text-only model, S = 1
  the default; S > 1 pushes identity further (the fusion is linear after the resampler, so
  this scales the face tokens' share exactly). The shallow face latent is not scaled.
- `steps` = (A, B) timestep values (0..1000): the face conditioning applies at steps whose
  timestep t has A <= t <= B; elsewhere the conditional branch uses the text-only tokens.
  Early steps (high t) lay out pose and motion, late ones (low t) the details, so e.g.
  `0:600` keeps the face out of the layout. (0, 1000) covers every step.
- `guidance` g_id adds a third guidance branch, text-only, so that
  `v = uncond + g (text_only - uncond) + g_id (face_and_text - text_only)`: identity gets its
  own guidance scale, apart from the prompt's g (which keeps its schedule). Costs a third
  DiT evaluation per step (1.5x the time of the two-branch default).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from echovideo_core.errors import InvalidInputError

MAX_TIMESTEP = 1000


@dataclass(frozen=True)
class IdentityControls:
    """strength S (1 = off), steps (A, B) timestep window or None (= every step),
    guidance g_id or None (= no third branch). See the module docstring."""

    strength: float = 1.0
    steps: tuple[int, int] | None = None
    guidance: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)) or not math.isfinite(self.strength):
            raise InvalidInputError(f"identity strength must be a finite number, got {self.strength!r}")
        if self.steps is not None:
            start, stop = self.steps
            if not (0 <= start <= stop <= MAX_TIMESTEP) or any(isinstance(v, bool) or not isinstance(v, int) for v in self.steps):
                raise InvalidInputError(
                    f"identity steps must be integer timesteps A:B with 0 <= A <= B <= {MAX_TIMESTEP}, got {start}:{stop}")
        if self.guidance is not None and (not isinstance(self.guidance, (int, float)) or not math.isfinite(self.guidance)
                                          or self.guidance < 0):
            raise InvalidInputError(f"identity guidance must be a finite number >= 0, got {self.guidance!r}")

    @property
    def window(self) -> tuple[int, int] | None:
        """The timestep window, None when it covers every timestep (0..1000)."""
        return None if self.steps in (None, (0, MAX_TIMESTEP)) else self.steps

    @property
    def active(self) -> bool:
        """Whether any control differs from the release's sampling."""
        return self.strength != 1.0 or self.window is not None or self.guidance is not None


def parse_identity_steps(text: str) -> tuple[int, int]:
    """"A:B" -> (A, B) integer timesteps (the CLI's --identity-steps)."""
    try:
        start, stop = (int(v) for v in text.split(":"))
    except ValueError:
        raise InvalidInputError(f"identity steps must look like A:B (timesteps, e.g. 0:600), got {text!r}") from None
    IdentityControls(steps=(start, stop))
    return start, stop


def scaled_identity(with_face: torch.Tensor, text_only: torch.Tensor, strength: float) -> torch.Tensor:
    """Fused tokens with the face's contribution scaled by `strength` (1 returns `with_face` itself)."""
    if strength == 1.0:
        return with_face
    return text_only + strength * (with_face - text_only)
