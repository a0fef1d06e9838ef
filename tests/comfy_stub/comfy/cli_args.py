"""Stand-in for comfy.cli_args (preview settings only)."""
import enum
from types import SimpleNamespace


class LatentPreviewMethod(enum.Enum):
    NoPreviews = "none"
    Auto = "auto"
    Latent2RGB = "latent2rgb"
    TAESD = "taesd"


args = SimpleNamespace(preview_method=LatentPreviewMethod.Auto)
