"""The face resampler (`face_prj_wofc` in the checkpoint): ArcFace rows -> 16 identity tokens.

A perceiver resampler in the IP-Adapter style. diffusers has a similar block
(`IPAdapterPlusImageProjection`), but its parameter names and its attention (separate k/v
projections, no pre-scaling of q and k) differ from the released checkpoint, so the layout
the checkpoint fixes is written here: `layers.{i}.0` = attention, `layers.{i}.1` = the
feed-forward as an `nn.Sequential(LayerNorm, Linear, GELU, Linear)`.
"""
from __future__ import annotations

import torch
from torch import nn


class PerceiverAttention(nn.Module):
    """Queries attend over [inputs ; queries]; q and k are each pre-scaled by dim_head**-0.25.

    Splitting the 1/sqrt(d) scale between q and k keeps the logits in range under half
    precision; the softmax runs in float32 for the same reason. No biases (checkpoint).
    """

    def __init__(self, dim: int, dim_head: int, heads: int) -> None:
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.scale = dim_head**-0.25
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, -1).transpose(1, 2)

    def forward(self, inputs: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """inputs (B, N, dim), queries (B, Q, dim) -> (B, Q, dim)."""
        inputs = self.norm1(inputs)
        queries = self.norm2(queries)
        q = self.to_q(queries)
        k, v = self.to_kv(torch.cat([inputs, queries], dim=1)).chunk(2, dim=-1)
        q, k, v = (self._split_heads(t) for t in (q, k, v))
        logits = (q * self.scale) @ (k * self.scale).transpose(-2, -1)
        weights = torch.softmax(logits.float(), dim=-1).to(logits.dtype)
        out = (weights @ v).transpose(1, 2).flatten(2)
        return self.to_out(out)


def _feed_forward(dim: int, mult: int) -> nn.Sequential:
    # Exact (erf) GELU here, unlike the tanh-approximate GELU of the CogVideoX blocks.
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, dim * mult, bias=False),
        nn.GELU(),
        nn.Linear(dim * mult, dim, bias=False),
    )


class FaceResampler(nn.Module):
    """(B, N, embedding_dim) ArcFace rows -> (B, num_queries, output_dim) identity tokens."""

    def __init__(
        self,
        dim: int = 1024,
        depth: int = 4,
        dim_head: int = 64,
        heads: int = 12,
        num_queries: int = 16,
        embedding_dim: int = 512,
        output_dim: int = 768,
        ff_mult: int = 4,
    ) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) / dim**0.5)
        self.proj_in = nn.Linear(embedding_dim, dim)
        self.proj_out = nn.Linear(dim, output_dim)
        self.norm_out = nn.LayerNorm(output_dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head, heads), _feed_forward(dim, ff_mult)])
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        queries = self.latents.expand(x.shape[0], -1, -1)
        x = self.proj_in(x)
        for attention, feed_forward in self.layers:
            queries = attention(x, queries) + queries
            queries = feed_forward(queries) + queries
        return self.norm_out(self.proj_out(queries))
