"""ComfyUI nodes of EchoVideo: thin adapters over `echovideo_core` (see the pack's __init__)."""
