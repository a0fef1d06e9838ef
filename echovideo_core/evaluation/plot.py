"""The per-frame similarity plot (where identity drifts, which frames had no face), and the
per-group plot of a batch (a study: how each setting moves identity and motion).

ArcFace cosine per scored frame (and CurricularFace when present), the copy-paste SSIM
dashed, the Identity Average as a horizontal line, and every miss as a red cross on the
axis (a miss is not a score of 0; the cross only says where it is). Drawn with
matplotlib's object API on an Agg canvas: no pyplot global state, no display needed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from echovideo_core.atomic import atomic_path
from echovideo_core.paths import check_output_file
from echovideo_core.evaluation.evaluate import VideoEvaluation

SIZE_INCHES = (9.6, 4.8)
DPI = 100


def _series(evaluation: VideoEvaluation, name: str) -> tuple[list[int], list[float]]:
    """Frame indices and values, NaN at misses so that the line breaks there."""
    values = [getattr(f, name) for f in evaluation.per_frame]
    return [f.index for f in evaluation.per_frame], [np.nan if v is None else v for v in values]


def identity_plot(evaluation: VideoEvaluation, title: str = "") -> np.ndarray:
    """(480, 960, 3) uint8 RGB picture of the per-frame scores."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for name, label, style in (("facesim_arc", "FaceSim-Arc (ArcFace cosine)", "o-"),
                               ("facesim_cur", "FaceSim-Cur (CurricularFace cosine)", "s-"),
                               ("ssim", "copy-paste SSIM (aligned crop vs reference)", "^--")):
        x, y = _series(evaluation, name)
        if not np.isnan(y).all():
            axes.plot(x, y, style, label=label, markersize=4)
    if evaluation.identity_average is not None:
        axes.axhline(evaluation.identity_average, color="grey", linewidth=1,
                     label=f"Identity Average {evaluation.identity_average:.3f}")
    misses = [f.index for f in evaluation.per_frame if not f.face]
    for index in misses:
        axes.axvspan(index - 0.4, index + 0.4, color="red", alpha=0.08, linewidth=0)
    if misses:
        axes.plot(misses, [0.0] * len(misses), "x", color="red", markersize=9, markeredgewidth=2,
                  label=f"no face (miss): {len(misses)} frame(s)", clip_on=False)
    indices = [f.index for f in evaluation.per_frame]
    axes.set_xlim(min(indices) - 0.5, max(indices) + 0.5)
    values = [y for n in ("facesim_arc", "facesim_cur", "ssim") for y in _series(evaluation, n)[1] if not np.isnan(y)]
    axes.set_ylim(min([0.0, *values]) - 0.02, 1.02)
    axes.set_xlabel("frame")
    axes.set_ylabel("similarity to the reference")
    scored = f"{evaluation.frames_scored} scored, {evaluation.frames_missed} missed"
    axes.set_title(f"{title}  ({scored})" if title else scored, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=8, frameon=False)
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _line(axes, groups: list[str], summaries: dict[str, dict], key: str, label: str, style: str) -> None:
    values = [np.nan if summaries[g][key] is None else summaries[g][key] for g in groups]
    if not np.isnan(values).all():
        axes.plot(range(len(groups)), values, style, label=label, markersize=5)


def study_plot(summaries: dict[str, dict], title: str = "") -> np.ndarray:
    """(480, 960, 3) uint8: per group (a study's setting), identity on the left (FaceSim-Arc,
    FaceSim-Cur, copy-paste SSIM) and motion on the right (Dynamic Degree, pose spread,
    mean flow on its own axis)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = list(summaries)
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    canvas = FigureCanvasAgg(figure)
    identity, motion = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    _line(identity, groups, summaries, "facesim_arc", "FaceSim-Arc (Identity Average)", "o-")
    _line(identity, groups, summaries, "facesim_cur", "FaceSim-Cur", "s-")
    _line(identity, groups, summaries, "copy_paste_ssim", "copy-paste SSIM", "^--")
    _line(motion, groups, summaries, "dynamic_degree", "Dynamic Degree", "o-")
    _line(motion, groups, summaries, "pose_spread", "pose spread", "^--")
    flow = motion.twinx()
    _line(flow, groups, summaries, "motion", "mean flow (px at 256, right axis)", "s:")
    flow.set_ylabel("px")
    for axes, name in ((identity, "identity"), (motion, "motion")):
        axes.set_xticks(range(len(groups)), groups, rotation=20, fontsize=8)
        axes.set_title(name, fontsize=10)
        axes.grid(alpha=0.3)
    handles = motion.get_legend_handles_labels()
    extra = flow.get_legend_handles_labels()
    motion.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=8, loc="best")
    identity.legend(fontsize=8, loc="best")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_plot(picture: np.ndarray, path: str | Path, overwrite: bool = False) -> Path:
    """Write the plot as PNG, atomically; an existing file is kept unless `overwrite`."""
    path = check_output_file(path, overwrite=overwrite)
    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")
    return path
