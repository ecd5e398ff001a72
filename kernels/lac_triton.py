"""Triton kernel: residual add, RMSNorm and the LAC decision in one pass.

One program per token row. The row's layer output and residual are read
once; the sum of squares that RMSNorm needs is also ||h||^2, so LAC costs a
handful of scalar loads and stores per row next to the two [D] reads and
two [D] writes the fused add+RMSNorm already does.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _add_rmsnorm_lac_kernel(
    x_ptr,
    residual_ptr,
    weight_ptr,
    skip_ptr,
    prev_norm_ptr,
    max_d_ptr,
    min_d_ptr,
    alpha_ptr,
    mask_rows_ptr,
    kept_ptr,
    normed_ptr,
    h_ptr,
    norm_ptr,
    d_ptr,
    new_max_ptr,
    new_min_ptr,
    activated_ptr,
    new_kept_ptr,
    hidden,
    eps,
    stride_x,
    stride_res,
    stride_kept,
    stride_out,
    FIRST_LAYER: tl.constexpr,
    HAS_KEPT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    in_row = cols < hidden
    skip = tl.load(skip_ptr + row).to(tl.int1)

    res = tl.load(residual_ptr + row * stride_res + cols, mask=in_row, other=0.0)
    h = res.to(tl.float32)
    if not skip:
        x = tl.load(x_ptr + row * stride_x + cols, mask=in_row, other=0.0)
        h += x.to(tl.float32)
    sq = tl.sum(h * h, axis=0)
    h_out = h.to(res.dtype)
    tl.store(h_ptr + row * stride_out + cols, h_out, mask=in_row)

    inv_rms = tl.rsqrt(sq / hidden + eps)
    w = tl.load(weight_ptr + cols, mask=in_row, other=0.0)
    # Round like the reference (normalise, cast, then scale), multiplying in fp32.
    normed = ((h * inv_rms).to(res.dtype).to(tl.float32) * w.to(tl.float32)).to(res.dtype)
    tl.store(normed_ptr + row * stride_out + cols, normed, mask=in_row)

    norm = tl.sqrt(sq)
    d = norm - tl.load(prev_norm_ptr + row)
    max_d = tl.load(max_d_ptr + row)
    min_d = tl.load(min_d_ptr + row)
    if FIRST_LAYER:
        threshold = 0.0
    else:
        threshold = tl.load(alpha_ptr + row) * (max_d - min_d)
    activated = d >= threshold
    tl.store(norm_ptr + row, norm)
    tl.store(d_ptr + row, d)
    tl.store(new_max_ptr + row, tl.maximum(max_d, d))
    tl.store(new_min_ptr + row, tl.minimum(min_d, d))
    tl.store(activated_ptr + row, activated.to(tl.int1))

    if HAS_KEPT:
        take = activated & (tl.load(mask_rows_ptr + row).to(tl.int1))
        if take:
            tl.store(new_kept_ptr + row * stride_kept + cols, h_out, mask=in_row)
        else:
            old = tl.load(kept_ptr + row * stride_kept + cols, mask=in_row, other=0.0)
            tl.store(new_kept_ptr + row * stride_kept + cols, old, mask=in_row)


def add_rmsnorm_lac_triton(
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor,
    eps: float,
    skip: torch.Tensor,
    prev_norm: torch.Tensor,
    max_d: torch.Tensor,
    min_d: torch.Tensor,
    alpha: torch.Tensor,
    first_layer: bool,
    kept: torch.Tensor,
    mask_rows: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """Same contract as ``add_rmsnorm_lac_reference``."""
    x, residual, kept = x.contiguous(), residual.contiguous(), kept.contiguous()
    rows, hidden = residual.shape
    normed = torch.empty_like(residual)
    h = torch.empty_like(residual)
    vec = [torch.empty(rows, dtype=torch.float32, device=residual.device) for _ in range(4)]
    norm, d, new_max, new_min = vec
    activated = torch.empty(rows, dtype=torch.bool, device=residual.device)
    has_kept = kept.shape[0] > 0
    new_kept = torch.empty_like(kept)
    if rows > 0:
        block = triton.next_power_of_2(hidden)
        _add_rmsnorm_lac_kernel[(rows,)](
            x,
            residual,
            weight,
            skip,
            prev_norm,
            max_d,
            min_d,
            alpha,
            mask_rows,
            kept,
            normed,
            h,
            norm,
            d,
            new_max,
            new_min,
            activated,
            new_kept,
            hidden,
            eps,
            x.stride(0),
            residual.stride(0),
            kept.stride(0) if has_kept else 0,
            h.stride(0),
            FIRST_LAYER=first_layer,
            HAS_KEPT=has_kept,
            BLOCK=block,
            num_warps=min(max(block // 256, 1), 16),
        )
    return normed, h, norm, d, new_max, new_min, activated, new_kept
