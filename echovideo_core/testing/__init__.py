"""Helpers for tests and tiny model kits: deterministic weights, tiny models. Not for production paths."""
