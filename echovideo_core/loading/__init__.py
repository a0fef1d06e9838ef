"""Every loader of the library, over one state-dict reader and one key report.

    loading/state_dict.py   read any weight file safely; compare keys; assign strictly
    loading/transformer.py  the EchoVideo DiT (released folder, single file)
    loading/vae.py          the CogVideoX VAE (the one VAE loader)
    loading/text_encoder.py T5 encoder (folder or file) and tokenizer
    loading/siglip.py       the SigLIP vision tower + processor
    loading/scheduler.py    the sampler's settings
    loading/face.py         face-model paths and the parser / RetinaFace weights
    loading/components.py   whole bundles (model, text encoder, face models)
"""
from __future__ import annotations

from echovideo_core.errors import CheckpointMismatchError
from echovideo_core.loading.state_dict import (CONFIG_METADATA_KEY, KeyReport, common_prefix, compare_keys,
                                               read_state_dict, strip_common_prefix)
from echovideo_core.loading.transformer import (FOREIGN_PREFIXES, INDEX_NAME, WEIGHT_NAME, build_on_meta, infer_config,
                                                load_transformer, read_transformer_weights, save_single_file)

__all__ = [
    "CONFIG_METADATA_KEY", "FOREIGN_PREFIXES", "INDEX_NAME", "WEIGHT_NAME", "CheckpointMismatchError", "KeyReport",
    "build_on_meta", "common_prefix", "compare_keys", "infer_config",
    "load_transformer", "read_state_dict", "read_transformer_weights", "save_single_file", "strip_common_prefix",
]
