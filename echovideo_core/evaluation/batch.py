"""Many videos at once: a folder or a manifest -> one row per video + the paper's table.

Folder: every `*.mp4` in it and in its subfolders (one level); each video's face photo is
`<stem>.png|.jpg|.jpeg|.webp` beside it (else `--face`), its prompt `<stem>.txt` beside it
(else `--prompt`). Each subfolder is a *group* (a setting of a study: one summary row each).
Manifest: a `.csv` with a header row, or a `.jsonl` with one object per line; fields
`video`, `face` (optional with `--face`), `prompt` and `group` (optional); relative paths
are relative to the manifest's folder.

Summary (the paper's columns, then the face-similarity columns of identity papers):
Identity Average, Identity Variation and the per-video scores are means over the videos
that have the score (a video without any face has no identity score and is counted apart);
Dynamic Degree is the share of dynamic videos; the Inception Distance is one FID between
all face crops of all videos and the reference crops (each reference photo once) pooled,
the dataset-level number the paper reports, not a mean of per-video FIDs.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from echovideo_core.errors import InvalidInputError
from echovideo_core.evaluation.evaluate import VideoEvaluation
from echovideo_core.evaluation.frechet import frechet_distance

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CSV_METRICS = ("identity_average", "identity_variation", "facesim_arc", "facesim_cur", "clip_score", "fid",
               "dynamic_degree", "motion", "copy_paste_ssim", "pose_spread", "frames_scored", "frames_missed")
# (summary key, column name, True: higher is better, False: lower is better, None: context, no direction)
SUMMARY_COLUMNS = (
    ("identity_average", "Identity Average", True),
    ("identity_variation", "Identity Variation", False),
    ("inception_distance", "Inception Distance", False),
    ("dynamic_degree", "Dynamic Degree", True),
    ("facesim_arc", "FaceSim-Arc", True),
    ("facesim_cur", "FaceSim-Cur", True),
    ("clip_score", "CLIPScore", True),
    ("copy_paste_ssim", "Copy-paste SSIM", None),
    ("pose_spread", "Pose spread", None),
)


@dataclass(frozen=True)
class BatchItem:
    """One video, its reference photo, its prompt, and its group ("" when ungrouped)."""

    video: Path
    face: Path
    prompt: str | None
    group: str = ""


def _sibling_photo(video: Path) -> Path | None:
    for suffix in PHOTO_SUFFIXES:
        if video.with_suffix(suffix).is_file():
            return video.with_suffix(suffix)
    return None


def items_from_folder(folder: Path, face: Path | None, prompt: str | None) -> list[BatchItem]:
    items = []
    groups = [(folder, "")] + [(sub, sub.name) for sub in sorted(folder.iterdir()) if sub.is_dir()]
    for where, group in groups:
        for video in sorted(where.glob("*.mp4")):
            photo = _sibling_photo(video) or face
            if photo is None:
                raise InvalidInputError(f"{video}: no face photo beside it ({video.stem}.png/.jpg) and no --face given")
            text = video.with_suffix(".txt")
            items.append(BatchItem(video, photo, text.read_text().strip() if text.is_file() else prompt, group))
    if not items:
        raise InvalidInputError(f"--batch {folder}: no .mp4 files in this folder or its subfolders")
    return items


def _manifest_rows(path: Path) -> list[dict]:
    text = path.read_text()
    if path.suffix.lower() == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(io.StringIO(text)))
    raise InvalidInputError(f"--batch {path}: a manifest must be .csv or .jsonl (or give a folder of .mp4 files)")


def items_from_manifest(path: Path, face: Path | None, prompt: str | None) -> list[BatchItem]:
    items = []
    for number, row in enumerate(_manifest_rows(path), start=1):
        if not row.get("video"):
            raise InvalidInputError(f"{path}, entry {number}: no 'video' field")
        photo = row.get("face") or face
        if not photo:
            raise InvalidInputError(f"{path}, entry {number}: no 'face' field and no --face given")
        items.append(BatchItem(path.parent / row["video"], path.parent / photo, row.get("prompt") or prompt,
                               str(row.get("group") or "")))
    if not items:
        raise InvalidInputError(f"--batch {path}: the manifest lists no videos")
    return items


def read_batch(source: Path, face: Path | None = None, prompt: str | None = None) -> list[BatchItem]:
    """The videos of a folder or a manifest, each file checked to exist."""
    items = items_from_folder(source, face, prompt) if source.is_dir() else items_from_manifest(source, face, prompt)
    for item in items:
        for path in (item.video, item.face):
            if not path.is_file():
                raise InvalidInputError(f"--batch {source}: {path} not found")
    return items


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def pooled_fid(items: Sequence[BatchItem], evaluations: Sequence[VideoEvaluation]) -> float | None:
    """FID of every face crop of every video against every distinct reference photo's crop."""
    frames = [e.frame_features for e in evaluations if e.frame_features is not None]
    references = {item.face.resolve(): e.reference_features for item, e in zip(items, evaluations)
                  if e.reference_features is not None}
    if not frames or not references:
        return None
    return frechet_distance(np.concatenate(frames), np.concatenate(list(references.values())))


def summarise(items: Sequence[BatchItem], evaluations: Sequence[VideoEvaluation]) -> dict:
    """The summary row: the paper's columns plus counts."""
    summary = {key: _mean([getattr(e, key, None) for e in evaluations]) for key, _, _ in SUMMARY_COLUMNS
               if key != "inception_distance"}
    summary["inception_distance"] = pooled_fid(items, evaluations)
    summary["motion"] = _mean([e.motion for e in evaluations])
    summary["videos"] = len(evaluations)
    summary["videos_without_face"] = sum(e.frames_scored == 0 for e in evaluations)
    summary["frames_scored"] = sum(e.frames_scored for e in evaluations)
    summary["frames_missed"] = sum(e.frames_missed for e in evaluations)
    return summary


def summarise_groups(items: Sequence[BatchItem], evaluations: Sequence[VideoEvaluation]) -> dict[str, dict]:
    """One summary per group, in the order the groups first appear ("all" when ungrouped)."""
    names = list(dict.fromkeys(item.group for item in items))
    return {name or "all": summarise([i for i in items if i.group == name],
                                     [e for i, e in zip(items, evaluations) if i.group == name]) for name in names}


def csv_text(items: Sequence[BatchItem], evaluations: Sequence[VideoEvaluation]) -> str:
    """One row per video: group, paths, prompt and every metric (empty cell for null)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["group", "video", "face", "prompt", *CSV_METRICS])
    for item, evaluation in zip(items, evaluations):
        values = [getattr(evaluation, key) for key in CSV_METRICS]
        writer.writerow([item.group, str(item.video), str(item.face), item.prompt or "",
                         *("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in values)])
    return out.getvalue()


def summary_table(summaries: dict[str, dict]) -> str:
    """A Markdown table with the paper's columns, one row per group (arrows: which way is
    better; the copy-paste columns have none: they tell a pasted face from a live one, not
    good from bad)."""
    arrows = {True: " ↑", False: " ↓", None: ""}
    head = [f"{name}{arrows[higher]}" for _, name, higher in SUMMARY_COLUMNS]
    lines = ["| group | videos | " + " | ".join(head) + " |", "|---" * (len(head) + 2) + "|"]
    for group, summary in summaries.items():
        cells = ["n/a" if summary[key] is None else f"{summary[key]:.3f}" for key, _, _ in SUMMARY_COLUMNS]
        lines.append(f"| {group} | {summary['videos']} | " + " | ".join(cells) + " |")
    counts = [f"{group}: {s['frames_scored']} scored, {s['frames_missed']} missed, {s['videos_without_face']} "
              f"video(s) without any face" for group, s in summaries.items()]
    return "\n".join(lines) + "\n\nFrames (misses = no face found): " + "; ".join(counts) + ".\n"
