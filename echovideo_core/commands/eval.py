"""`echovideo eval`: how well a generated video keeps the identity of a face photo.

    echovideo eval --video V.mp4 --face PHOTO --face-models DIR [--prompt P] [--frames K]
                   --json OUT.json [--plot OUT.png]
    echovideo eval --batch FOLDER_OR_MANIFEST [--face PHOTO] --face-models DIR
                   --csv OUT.csv [--summary OUT.md] [--json OUT.json] [--plot OUT.png] [--plot-dir DIR]

Writes FaceSim-Arc (ArcFace cosine to the reference), FaceSim-Cur (CurricularFace, when its
weights are present), Identity Average / Variation, CLIPScore (with a prompt and a local
CLIP), FID of the face crops against the reference (local Inception weights), Dynamic Degree
(Farneback optical flow), and two copy-paste indicators: SSIM of the aligned face to the
aligned reference and the spread of head pose / expression. In a batch, each subfolder (or
manifest `group`) is one row of the summary table and one point of the --plot: a study of
settings. A frame without a face is a
miss, counted apart, never a similarity of 0. A missing optional weight file switches its
metric off (null) with a note naming the file; nothing is downloaded. Definitions:
docs/identity_study.md. DIR is the face-model folder of `echovideo face`.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="score a video's identity (FaceSim, CLIPScore, FID, motion, copy-paste)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", type=Path, help="the generated video (.mp4)")
    source.add_argument("--batch", type=Path, metavar="FOLDER_OR_MANIFEST",
                        help="a folder of .mp4 files (face photo / prompt .txt beside each) or a .csv / .jsonl manifest")
    parser.add_argument("--face", type=Path, help="the reference face photo (batch: for videos without their own)")
    parser.add_argument("--face-models", type=Path, required=True, metavar="DIR",
                        help="face model folder (antelopev2/, parsing_bisenet.pth; optional metric weights)")
    parser.add_argument("--prompt", default=None, help="the prompt, for CLIPScore (batch: default for every video)")
    parser.add_argument("--frames", type=_positive, default=32, metavar="K", help="evenly spaced frames scored (default 32)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the metrics as JSON")
    parser.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                        help="--video: per-frame similarity plot; --batch: metrics per group (subfolder)")
    parser.add_argument("--csv", type=Path, default=None, help="one row per video (--batch; required there)")
    parser.add_argument("--summary", type=Path, default=None, help="summary table, Markdown (default: CSV with .md)")
    parser.add_argument("--plot-dir", type=Path, default=None, help="one plot per video, [GROUP/]<stem>.png (--batch)")
    parser.add_argument("--curricularface", type=Path, default=None, help="CurricularFace backbone weights file")
    parser.add_argument("--inception", type=Path, default=None, help="FID Inception weights file")
    parser.add_argument("--clip", type=Path, default=None, help="transformers CLIP folder")
    parser.add_argument("--device", default=None, help="cuda / cpu for the torch models (default: cuda when available)")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    parser.set_defaults(run=run)


def _targets(args: argparse.Namespace) -> list[Path]:
    """Every file this run writes; checked before anything loads."""
    from echovideo_core.errors import InvalidInputError

    if args.video is not None:
        if args.face is None:
            raise InvalidInputError("--video needs --face PHOTO (the reference face)")
        if args.csv or args.summary or args.plot_dir:
            raise InvalidInputError("--csv, --summary and --plot-dir belong to --batch; use --json / --plot with --video")
        return [p for p in (args.json, args.plot) if p is not None]
    if args.csv is None:
        raise InvalidInputError("--batch needs --csv OUT.csv")
    args.summary = args.summary or args.csv.with_suffix(".md")
    return [p for p in (args.csv, args.summary, args.json, args.plot) if p is not None]


def _check_inputs(args: argparse.Namespace) -> list[Path]:
    from echovideo_core.errors import MissingInputError
    from echovideo_core.paths import check_input_file, check_input_folder, check_output_file

    targets = _targets(args)
    for option, path in (("--video", args.video), ("--face", args.face)):
        if path is not None:
            check_input_file(path, option)
    if args.batch is not None and not args.batch.exists():
        raise MissingInputError(f"--batch {args.batch}: no such folder or manifest", path=args.batch)
    check_input_folder(args.face_models, "--face-models")
    for path in targets:
        check_output_file(path, overwrite=args.overwrite, create_parents=True)
    return targets


def _write(path: Path, text: str) -> None:
    from echovideo_core.atomic import write_text_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


class _Evaluator:
    """The face models and the optional metric models, loaded once for every video."""

    def __init__(self, args: argparse.Namespace, want_clip: bool):
        import torch

        from echovideo_core.evaluation.models import find_metric_weights, load_metric_models
        from echovideo_core.face import FacePreparer

        weights = find_metric_weights(args.face_models, curricularface=args.curricularface,
                                      inception=args.inception, clip=args.clip, want_clip=want_clip)
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.preparer = FacePreparer(args.face_models)
        self.models = load_metric_models(self.preparer.detector, weights, device)
        self.frames = args.frames
        self.references: dict[Path, object] = {}

    def evaluate(self, video: Path, face: Path, prompt: str | None):
        from echovideo_core.evaluation.evaluate import evaluate_video
        from echovideo_core.evaluation.frame_faces import reference_from_face_result
        from echovideo_core.evaluation.video_file import load_video

        key = face.resolve()
        if key not in self.references:
            self.references[key] = reference_from_face_result(self.preparer.prepare(face))
        frames, fps = load_video(video)
        return evaluate_video(frames, self.references[key], self.models, prompt=prompt, scored_frames=self.frames,
                              fps=fps)


def run_single(args: argparse.Namespace) -> str:
    from echovideo_core.evaluation.plot import identity_plot, save_plot

    evaluation = _Evaluator(args, want_clip=bool(args.prompt)).evaluate(args.video, args.face, args.prompt)
    data = evaluation.to_json()
    if args.json is not None:
        _write(args.json, json.dumps(data, indent=1))
    else:
        print(json.dumps(data, indent=1))
    if args.plot is not None:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        save_plot(identity_plot(evaluation, title=args.video.name), args.plot, overwrite=args.overwrite)
    for note in evaluation.notes:
        logger.info("note: %s", note)
    return f"{args.video}: " + "; ".join(evaluation.summary_lines())


def run_batch(args: argparse.Namespace) -> str:
    from echovideo_core.evaluation.batch import csv_text, read_batch, summarise, summarise_groups, summary_table
    from echovideo_core.evaluation.plot import identity_plot, save_plot, study_plot

    items = read_batch(args.batch, args.face, args.prompt)
    evaluator = _Evaluator(args, want_clip=any(item.prompt for item in items))
    evaluations = []
    for number, item in enumerate(items, start=1):
        logger.info("[%d/%d] %s", number, len(items), item.video)
        evaluations.append(evaluator.evaluate(item.video, item.face, item.prompt))
        if args.plot_dir is not None:
            folder = args.plot_dir / item.group
            folder.mkdir(parents=True, exist_ok=True)
            save_plot(identity_plot(evaluations[-1], title=item.video.name), folder / f"{item.video.stem}.png",
                      overwrite=args.overwrite)
    groups = summarise_groups(items, evaluations)
    _write(args.csv, csv_text(items, evaluations))
    _write(args.summary, summary_table(groups))
    if args.plot is not None:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        save_plot(study_plot(groups, title=args.batch.name), args.plot, overwrite=args.overwrite)
    if args.json is not None:
        videos = [{"group": i.group, "video": str(i.video), "face": str(i.face), "prompt": i.prompt, **e.to_json()}
                  for i, e in zip(items, evaluations)]
        _write(args.json, json.dumps({"summary": summarise(items, evaluations), "groups": groups, "videos": videos},
                                     indent=1))
    print(summary_table(groups), end="")
    return f"wrote {args.csv} and {args.summary} ({len(items)} videos)"


def run(args: argparse.Namespace) -> int:
    _check_inputs(args)  # a mistake is one line, from the CLI's error boundary
    print(run_single(args) if args.video is not None else run_batch(args))
    return 0
