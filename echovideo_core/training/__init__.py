"""Two-stage training and fine-tuning of EchoVideo (docs/design.md section 7), on accelerate.

- `prepare.py`: clips + captions -> cached T5 / VAE / SigLIP / ArcFace / face-latent shards
- `data.py`: the cache as a Dataset; `objective.py`: v target, stage-2 and CFG dropout
- `trainer.py`: the loop; `checkpoint.py`: resumable checkpoints and exports
- `lora.py`: `apply_lora(model, path, strength)` for the pipeline and the ComfyUI loader

Nothing is imported here so that `from echovideo_core.lora import apply_lora`
does not pull in accelerate or peft.
"""
