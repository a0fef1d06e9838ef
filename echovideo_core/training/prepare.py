"""Data preparation: clips + captions -> the cached training set (see data.py for the layout).

For each manifest line `{"video": path, "caption": text, "face": optional photo}`:
read `windows_per_clip` windows of `num_frames` frames (every `frame_stride`-th source
frame), resize + centre-crop them to the training size, prepare the face (on the given photo,
else on the `face_frame` of the first window at source resolution), and cache T5, VAE
latents, SigLIP, ArcFace and the face latent in one shard per clip.

Resumable: a finished shard is never rewritten (shards are written to a temporary name and
renamed when complete, so an existing shard is a finished one); a rerun only does what is
missing. Clips without a face, too short or unreadable are skipped and reported, never fatal.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import av
import cv2
import numpy as np
import torch
from diffusers import AutoencoderKLCogVideoX
from safetensors.torch import save_file
from tqdm import tqdm
from transformers import T5EncoderModel, T5Tokenizer

from echovideo_core.atomic import atomic_path, write_json_atomic
from echovideo_core.errors import InputFileError, InvalidInputError
from echovideo_core.face.errors import FaceError
from echovideo_core.face_features import encode_siglip
from echovideo_core.face_latent import encode_face_latent
from echovideo_core.paths import check_input_file
from echovideo_core.loading.siglip import SiglipEncoder
from echovideo_core.loading.state_dict import read_json
from echovideo_core.text import encode_prompt
from echovideo_core.validation import check_num_frames, check_size
from echovideo_core.training.data import CACHE_FORMAT, CACHE_VERSION, INDEX_NAME, SHARD_DIR, UNCOND_NAME

logger = logging.getLogger(__name__)


class FaceSource(Protocol):
    """What preparation needs from face preparation (`echovideo_core.face.FacePreparer` fits):
    `prepare(image)` returns an object with `identity_image` (512, 512, 3) uint8 and raw
    `arcface` (512,), or raises a FaceError (NoFaceError) when there is no usable face."""

    def prepare(self, image: Any) -> Any: ...


@dataclass(frozen=True)
class PrepareSettings:
    height: int = 480
    width: int = 848
    num_frames: int = 49  # 4k + 1 (49 = 13 latent frames, the release's length)
    frame_stride: int = 1  # 1 = consecutive source frames; 2 = every other (slower motion)
    windows_per_clip: int = 1  # non-overlapping windows taken from the start of each clip
    face_frame: Literal["first", "middle"] = "middle"  # frame of window 0 used for the face
    seed: int = 0  # VAE latent samples are drawn from generators seeded by (seed, clip)
    max_sequence_length: int = 226

    def __post_init__(self) -> None:
        check_size(self.height, self.width)
        check_num_frames(self.num_frames, allow_long_video=True)
        if self.frame_stride < 1 or self.windows_per_clip < 1:
            raise InvalidInputError(f"frame_stride and windows_per_clip must be >= 1, got {self.frame_stride} and "
                                    f"{self.windows_per_clip}")


@dataclass(frozen=True)
class ManifestEntry:
    """One clip. `key` identifies it independently of where the data folder is and how its
    path was typed (the manifest's own strings); shard names are derived from it."""

    video: Path
    caption: str
    face: Path | None = None
    key: str | None = None


@dataclass(frozen=True)
class Encoders:
    """The frozen models preparation runs (all on one device)."""

    tokenizer: T5Tokenizer
    text_encoder: T5EncoderModel
    vae: AutoencoderKLCogVideoX
    siglip: SiglipEncoder
    face: FaceSource


@dataclass(frozen=True)
class PrepareReport:
    """prepared: clips written now; reused: finished shards found; skipped: (video, reason)."""

    prepared: int
    reused: int
    skipped: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    samples: int = 0


def read_manifest(path: str | Path, videos_dir: str | Path | None = None) -> list[ManifestEntry]:
    """JSONL lines {"video", "caption", "face"?}; relative paths are taken from `videos_dir`.
    InputFileError naming the file (and line) when it is not such a manifest."""
    path = check_input_file(path, "--captions")
    base = Path(videos_dir) if videos_dir is not None else path.parent
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(f"--captions {path} is not a readable text file ({err})", path=path) from err
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            video, caption = row["video"], row["caption"]
            face = row.get("face")
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise InputFileError(f"--captions {path}:{number}: expected a JSON object "
                                 f"{{\"video\": ..., \"caption\": ...}} ({err})", path=path) from err
        entries.append(ManifestEntry(base / video, str(caption), base / face if face else None,
                                     key=f"{video}\n{face or ''}"))
    if not entries:
        raise InputFileError(f"--captions {path} lists no clips (one JSON object per line)", path=path)
    return entries


def shard_name(position: int, entry: ManifestEntry) -> str:
    """The clip's shard: its position and a hash of its manifest line (not of the path as typed)."""
    key = entry.key if entry.key is not None else f"{entry.video}\n{entry.face}"
    digest = hashlib.sha1(f"{key}\n{entry.caption}".encode()).hexdigest()[:10]
    return f"{SHARD_DIR}/clip_{position:06d}_{digest}.safetensors"


def read_windows(path: Path, settings: PrepareSettings) -> list[np.ndarray]:
    """Up to windows_per_clip windows (num_frames, h, w, 3) uint8 at source size; [] if too short."""
    span = settings.num_frames * settings.frame_stride
    wanted = span * settings.windows_per_clip
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= wanted:
                break
    return [np.stack(frames[w * span:(w + 1) * span:settings.frame_stride])
            for w in range(len(frames) // span)]


def resize_crop(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(F, h, w, 3) -> (F, height, width, 3): scale to cover, then centre-crop."""
    h, w = frames.shape[1:3]
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    top, left = (new_h - height) // 2, (new_w - width) // 2
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (new_w, new_h), interpolation=interp)[top:top + height, left:left + width]
                     for f in frames])


@torch.no_grad()
def encode_video(vae: AutoencoderKLCogVideoX, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F', C, H/8, W/8) float32 latent sample x scaling factor."""
    pixels = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # (1, 3, F, H, W)
    dist = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
    latents = dist.sample(generator=generator) * vae.config.scaling_factor
    return latents[0].permute(1, 0, 2, 3).float().cpu()


def _face_image(entry: ManifestEntry, window: np.ndarray, settings: PrepareSettings) -> Any:
    if entry.face is not None:
        return entry.face
    return window[0] if settings.face_frame == "first" else window[len(window) // 2]


def prepare_clip(entry: ManifestEntry, position: int, encoders: Encoders,
                 settings: PrepareSettings) -> dict[str, torch.Tensor]:
    """Every cached tensor of one clip (data.py's shard layout). Raises FaceError / ValueError."""
    windows = read_windows(entry.video, settings)
    if not windows:
        raise ValueError(f"shorter than {settings.num_frames * settings.frame_stride} frames")
    face = encoders.face.prepare(_face_image(entry, windows[0], settings))
    generator = torch.Generator("cpu").manual_seed(settings.seed * 1_000_003 + position)
    latents = [encode_video(encoders.vae, resize_crop(w, settings.height, settings.width), generator)
               for w in windows]
    face_latent = encode_face_latent(encoders.vae, face.identity_image, height=settings.height,
                                     width=settings.width, num_frames=settings.num_frames, generator=generator)
    text = encode_prompt(encoders.tokenizer, encoders.text_encoder, entry.caption, settings.max_sequence_length)
    return {
        "latents": torch.stack(latents),
        "face_latent": face_latent.latents[0, 0].cpu(),
        "text": text.embeds[0].float().cpu(),
        "siglip": encode_siglip(encoders.siglip, face.identity_image)[0].cpu(),
        "arcface": torch.as_tensor(np.asarray(face.arcface, dtype=np.float32)).reshape(-1),
        "identity_image": torch.from_numpy(np.ascontiguousarray(face.identity_image)),
    }


def _save_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def write_unconditional(out: Path, encoders: Encoders, settings: PrepareSettings) -> None:
    """T5 of "" and SigLIP of a black identity image: what CFG dropout swaps in."""
    if (out / UNCOND_NAME).is_file():
        return
    text = encode_prompt(encoders.tokenizer, encoders.text_encoder, "", settings.max_sequence_length)
    siglip = encode_siglip(encoders.siglip, np.zeros((512, 512, 3), np.uint8))
    _save_atomic({"text": text.embeds[0].float().cpu(), "siglip": siglip[0].cpu()}, out / UNCOND_NAME, {})


def _load_or_start_index(out: Path, settings: PrepareSettings) -> dict[str, Any]:
    path = out / INDEX_NAME
    wanted = asdict(settings)
    if path.is_file():
        index = read_json(path)
        if index.get("settings", {}).get("prepare") != wanted:
            raise InvalidInputError(f"--out {out} was prepared with other settings "
                                    f"({index.get('settings', {}).get('prepare')}); use another --out folder or the "
                                    "same settings", path=out)
        return index
    return {"format": CACHE_FORMAT, "version": CACHE_VERSION, "settings": {"prepare": wanted}, "clips": [], "skipped": []}


def prepare_dataset(entries: list[ManifestEntry], out: str | Path, encoders: Encoders,
                    settings: PrepareSettings, *, progress: bool = False) -> PrepareReport:
    """Prepare every manifest entry into `out`; returns what was done, reused and skipped.
    `progress`: a progress bar with the time left (stderr)."""
    out = Path(out)
    (out / SHARD_DIR).mkdir(parents=True, exist_ok=True)
    index = _load_or_start_index(out, settings)
    index["settings"].update(height=settings.height, width=settings.width, num_frames=settings.num_frames)
    write_unconditional(out, encoders, settings)
    done = {clip["shard"]: clip for clip in index["clips"]}
    clips, skipped, prepared, reused = [], [], 0, 0
    for position, entry in enumerate(tqdm(entries, desc="clips", unit="clip", disable=not progress)):
        name = shard_name(position, entry)
        if (out / name).is_file():
            reused += 1
            clips.append(done.get(name) or _clip_record(entry, name, out))
            continue
        try:
            tensors = prepare_clip(entry, position, encoders, settings)
        except (FaceError, ValueError, OSError, av.error.FFmpegError) as err:
            logger.warning("skipping %s: %s", entry.video, err)
            skipped.append((str(entry.video), str(err)))
            continue
        _save_atomic(tensors, out / name, {"video": str(entry.video), "caption": entry.caption})
        clips.append({"video": str(entry.video), "caption": entry.caption, "shard": name,
                      "windows": int(tensors["latents"].shape[0])})
        prepared += 1
        index.update(clips=clips, skipped=[{"video": v, "reason": r} for v, r in skipped])
        write_json_atomic(out / INDEX_NAME, index)
    index.update(clips=clips, skipped=[{"video": v, "reason": r} for v, r in skipped])
    write_json_atomic(out / INDEX_NAME, index)
    samples = sum(int(c["windows"]) for c in clips)
    logger.debug("prepared %d clips, reused %d, skipped %d -> %d samples in %s",
                 prepared, reused, len(skipped), samples, out)  # the caller reports it (the CLI's summary)
    return PrepareReport(prepared=prepared, reused=reused, skipped=tuple(skipped), samples=samples)


def _clip_record(entry: ManifestEntry, name: str, out: Path) -> dict[str, Any]:
    """Index record of a finished shard that the index lost (killed between shard and index write)."""
    from echovideo_core.loading.state_dict import open_tensors

    with open_tensors(out / name) as f:
        windows = f.shape("latents")[0]
    return {"video": str(entry.video), "caption": entry.caption, "shard": name, "windows": int(windows)}


def load_encoders(model_dir: str | Path, face_models: str | Path, *, device: str | torch.device = "cpu",
                  dtype: torch.dtype = torch.float32) -> Encoders:
    """T5, VAE (float32: latents are cached once, precision is cheap here) and SigLIP from a
    released folder, and the face models from `face_models`; offline only."""
    from echovideo_core.face import FacePreparer
    from echovideo_core.loading.components import check_released_folder
    from echovideo_core.loading.siglip import load_siglip
    from echovideo_core.loading.text_encoder import load_t5, load_tokenizer
    from echovideo_core.loading.vae import load_vae

    root = Path(model_dir)
    check_released_folder(root, ["vae", "text_encoder", "tokenizer", "siglip"])
    face = FacePreparer(face_models)  # the small models first: a missing one fails before T5 loads
    siglip = load_siglip(root, dtype)
    siglip.model.to(device)
    return Encoders(
        tokenizer=load_tokenizer(root / "tokenizer"),
        text_encoder=load_t5(root / "text_encoder", dtype).to(device),
        vae=load_vae(root / "vae", torch.float32).to(device),
        siglip=siglip,
        face=face,
    )
