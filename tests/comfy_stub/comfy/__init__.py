"""Stand-in for the `comfy` package (no bundled tokenizer here)."""
