"""Stand-in for ComfyUI's latent_preview (the picture conversion only)."""
import numpy as np
from PIL import Image

MAX_PREVIEW_RESOLUTION = 512


def preview_to_image(latent_image):
    values = ((latent_image.float().clamp(-1, 1) + 1) * 127.5).to("cpu").numpy().astype(np.uint8)
    return Image.fromarray(values)
