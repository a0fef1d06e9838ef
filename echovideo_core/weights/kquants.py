"""GGUF block quantisation in torch: Q8_0, Q4_K and Q5_K, both directions.

Why by hand: the `gguf` package reads and writes the files and dequantises every type, but
in numpy on the CPU only, and it has no Q4_K / Q5_K quantiser. A DiT layer that waits in
GPU memory as blocks must be dequantised there, at every forward, so the three types we
write are decoded here in torch (bit-identical to `gguf.quants.dequantize`, which the tests
check); every other type a file may hold falls back to the package's numpy decoder.

Block layouts (ggml's, little-endian; "f16" is an IEEE half):
- Q8_0, 32 values in 34 bytes: d (f16), 32 int8 q; value = d * q.
- Q4_K, 256 values in 144 bytes: d, dmin (f16), 12 bytes holding eight 6-bit scales and
  eight 6-bit mins (one per 32-value sub-block), 128 bytes of 4-bit q (sub-blocks 2i and 2i+1
  share 32 bytes: low and high nibble); value = d * scale_j * q - dmin * min_j.
- Q5_K, 256 values in 176 bytes: as Q4_K plus 32 bytes of fifth bits (bit j of byte l is
  the high bit of value l of sub-block j) placed before the 4-bit part; q in 0..31.

Our K-quantiser is the plain one: each sub-block's step and offset come from its min and
max (offset from min(0, minimum), as ggml stores mins as positive offsets), then the eight
steps and offsets are rounded to 6 bits under one f16 super-scale each. ggml's own tools
search for a better step per sub-block; files they write load here unchanged, ours are a
little less accurate than theirs (docs/weights.md has the measured errors).
"""
from __future__ import annotations

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf import quants as gguf_quants

Q8_0 = GGMLQuantizationType.Q8_0
Q4_K = GGMLQuantizationType.Q4_K
Q5_K = GGMLQuantizationType.Q5_K
FLOAT_TYPES: dict[GGMLQuantizationType, torch.dtype] = {
    GGMLQuantizationType.F32: torch.float32, GGMLQuantizationType.F16: torch.float16,
    GGMLQuantizationType.BF16: torch.bfloat16,
}
SUB_BLOCK = 32  # values per Q8_0 block and per K-quant sub-block


def block_size(qtype: GGMLQuantizationType) -> int:
    """How many values one block of `qtype` holds (1 for the float types)."""
    return GGML_QUANT_SIZES[qtype][0]


def fits(shape: tuple[int, ...], qtype: GGMLQuantizationType) -> bool:
    """Whether rows of this shape split into whole blocks of `qtype` (GGUF quantises along rows)."""
    return len(shape) >= 1 and shape[-1] % block_size(qtype) == 0


def byte_shape(shape: tuple[int, ...], qtype: GGMLQuantizationType) -> tuple[int, ...]:
    """(rows..., bytes per row) of a tensor of logical `shape` stored as `qtype`."""
    values, nbytes = GGML_QUANT_SIZES[qtype]
    return (*shape[:-1], shape[-1] // values * nbytes)


def _half(columns: torch.Tensor) -> torch.Tensor:
    """(n, 2) uint8 -> (n,) float32 read as little-endian f16."""
    return columns.contiguous().view(torch.float16).reshape(-1).float()


def _k_scales(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 12) uint8 -> eight 6-bit scales and eight 6-bit mins per block, (n, 8) float32 each.

    Bytes 0-3 hold scales 0-3 in their low 6 bits, bytes 4-7 mins 0-3; bytes 8-11 hold the
    low 4 bits of scale 4+i (low nibble) and min 4+i (high nibble), whose top 2 bits sit in
    the top 2 bits of bytes i and 4+i.
    """
    low, high, mixed = packed[:, 0:4], packed[:, 4:8], packed[:, 8:12]
    scales = torch.cat([low & 63, (mixed & 15) | ((low >> 6) << 4)], dim=1)
    mins = torch.cat([high & 63, (mixed >> 4) | ((high >> 6) << 4)], dim=1)
    return scales.float(), mins.float()


def _nibbles(packed: torch.Tensor) -> torch.Tensor:
    """(n, 128) uint8 -> (n, 8, 32) 4-bit values: sub-block 2i low nibbles, 2i+1 high nibbles."""
    pairs = packed.reshape(-1, 4, 1, SUB_BLOCK)
    return torch.cat([pairs & 15, pairs >> 4], dim=2).reshape(-1, 8, SUB_BLOCK)


def _dequantize_q8_0(blocks: torch.Tensor) -> torch.Tensor:
    return blocks[:, 2:].contiguous().view(torch.int8).float() * _half(blocks[:, :2]).unsqueeze(1)


def _dequantize_k(blocks: torch.Tensor, fifth_bits: bool) -> torch.Tensor:
    d, dmin = _half(blocks[:, 0:2]), _half(blocks[:, 2:4])
    scales, mins = _k_scales(blocks[:, 4:16])
    q = _nibbles(blocks[:, 48:] if fifth_bits else blocks[:, 16:])
    if fifth_bits:
        shifts = torch.arange(8, dtype=torch.uint8, device=blocks.device).reshape(1, 8, 1)
        q = q | (((blocks[:, 16:48].unsqueeze(1) >> shifts) & 1) << 4)
    step = (d.unsqueeze(1) * scales).unsqueeze(-1)
    offset = (dmin.unsqueeze(1) * mins).unsqueeze(-1)
    return (step * q.float() - offset).reshape(-1, 256)


def dequantize(data: torch.Tensor, qtype: GGMLQuantizationType, shape: tuple[int, ...],
               dtype: torch.dtype = torch.float32, chunk_values: int = 1 << 22) -> torch.Tensor:
    """Stored bytes (any shape, uint8; float types may come as their own dtype) -> `shape` in `dtype`.

    Runs on `data`'s device for the float types, Q8_0, Q4_K and Q5_K (`chunk_values` values
    at a time, so the float32 working copy stays small next to a large layer); other types go
    through the gguf package on the CPU and come back to that device.
    """
    if qtype in FLOAT_TYPES:
        values = data if data.dtype == FLOAT_TYPES[qtype] else data.contiguous().view(FLOAT_TYPES[qtype])
        return values.reshape(shape).to(dtype)
    values_per_block, nbytes = GGML_QUANT_SIZES[qtype]
    blocks = data.reshape(-1, nbytes)
    if qtype not in (Q8_0, Q4_K, Q5_K):
        array = gguf_quants.dequantize(blocks.cpu().numpy(), qtype)
        return torch.from_numpy(np.ascontiguousarray(array)).to(data.device).reshape(shape).to(dtype)
    out = torch.empty(blocks.shape[0], values_per_block, dtype=dtype, device=data.device)
    step = max(1, chunk_values // values_per_block)
    for start in range(0, blocks.shape[0], step):
        part = blocks[start:start + step]
        decoded = _dequantize_q8_0(part) if qtype == Q8_0 else _dequantize_k(part, fifth_bits=qtype == Q5_K)
        out[start:start + step] = decoded
    return out.reshape(shape)


def _quantize_k(values: torch.Tensor, levels: int) -> torch.Tensor:
    """(n, 256) float32 -> (n, 144 or 176) uint8 K-quant blocks (levels 15: Q4_K, 31: Q5_K)."""
    n = values.shape[0]
    sub = values.reshape(n, 8, SUB_BLOCK)
    offset = -sub.amin(-1).clamp(max=0)               # (n, 8) >= 0: value = step * q - offset
    step = (sub.amax(-1) + offset) / levels
    d = (step.amax(-1) / 63).half()
    dmin = (offset.amax(-1) / 63).half()

    def six_bits(wanted: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        unit = unit.float().unsqueeze(1)
        return torch.where(unit > 0, wanted / torch.where(unit > 0, unit, 1), 0).round().clamp(0, 63)

    scales, mins = six_bits(step, d), six_bits(offset, dmin)
    real_step = (d.float().unsqueeze(1) * scales).unsqueeze(-1)
    real_offset = (dmin.float().unsqueeze(1) * mins).unsqueeze(-1)
    inverse = torch.where(real_step > 0, 1 / torch.where(real_step > 0, real_step, 1), 0)
    q = ((sub + real_offset) * inverse).round().clamp(0, levels).to(torch.uint8)

    sc, mn = scales.to(torch.uint8), mins.to(torch.uint8)
    packed_scales = torch.cat([
        (sc[:, :4] & 63) | ((sc[:, 4:] >> 4) << 6),
        (mn[:, :4] & 63) | ((mn[:, 4:] >> 4) << 6),
        (sc[:, 4:] & 15) | ((mn[:, 4:] & 15) << 4),
    ], dim=1)
    low = (q & 15).reshape(n, 4, 2, SUB_BLOCK)
    nibbles = (low[:, :, 0] | (low[:, :, 1] << 4)).reshape(n, 128)
    parts = [d.view(torch.uint8).reshape(n, 2), dmin.view(torch.uint8).reshape(n, 2), packed_scales]
    if levels == 31:
        shifts = torch.arange(8, dtype=torch.uint8, device=values.device).reshape(1, 8, 1)
        parts.append((((q >> 4) & 1) << shifts).sum(dim=1, dtype=torch.uint8))
    parts.append(nibbles)
    return torch.cat(parts, dim=1)


def quantize(weight: torch.Tensor, qtype: GGMLQuantizationType, chunk_values: int = 1 << 21) -> torch.Tensor:
    """A float tensor -> its `qtype` bytes, shaped byte_shape(weight.shape, qtype), on the CPU.

    Whole rows of about `chunk_values` values at a time, so the float32 working copy stays small.
    Q8_0 is the gguf package's (ggml's rounding, bit-exact); Q4_K / Q5_K are ours (see above).
    """
    shape = tuple(weight.shape)
    if not fits(shape, qtype):
        raise ValueError(f"rows of {shape[-1]} values do not split into {qtype.name} blocks of {block_size(qtype)}")
    rows = weight.detach().reshape(-1, shape[-1])
    chunk_rows = max(1, chunk_values // shape[-1])
    out = []
    for start in range(0, rows.shape[0], chunk_rows):
        chunk = rows[start:start + chunk_rows].to("cpu", torch.float32)
        if qtype == Q8_0:
            out.append(torch.from_numpy(gguf_quants.quantize(chunk.numpy(), Q8_0)))
        elif qtype in (Q4_K, Q5_K):
            blocks = _quantize_k(chunk.reshape(-1, 256), 15 if qtype == Q4_K else 31)
            out.append(blocks.reshape(chunk.shape[0], -1))
        else:
            raise ValueError(f"no quantiser for {qtype.name} (we write Q8_0, Q4_K and Q5_K)")
    return torch.cat(out).reshape(byte_shape(shape, qtype))
