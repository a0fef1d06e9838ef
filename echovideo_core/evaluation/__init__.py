"""Identity you can measure: the paper's metrics for one generated video (issue 15).

One module per metric, pure functions where the metric is math:

    sampling.py       which frames are scored (default 32, evenly spaced)
    identity.py       ArcFace / CurricularFace cosine -> Identity Average, Identity Variation
    copy_paste.py     masked SSIM of the aligned crop to the reference; pose / expression spread
    motion.py         dynamic degree from OpenCV Farneback optical flow
    frechet.py        Frechet (Inception) distance between two feature sets
    inception.py      the FID Inception-v3 (pt_inception key layout), no torchvision
    curricularface.py IR-101 CurricularFace backbone (face.evoLVe key layout)
    clip_score.py     CLIPScore with a local transformers CLIP
    frame_faces.py    faces of the sampled frames through the project's face stack
    weights.py        where the optional metric weights are looked up (never downloaded)
    evaluate.py       one video -> VideoEvaluation (the JSON of `echovideo eval`)
    plot.py           the per-frame similarity plot (matplotlib, misses marked)
    batch.py          a folder or manifest of videos -> rows, CSV and the paper's summary table

Nothing here imports ComfyUI; `nodes/evaluation.py` adapts `evaluate_video` for the graph.
"""
