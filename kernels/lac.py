"""L2 Adaptive Computation (LAC): the per-layer maths.

For one token, with h_l the residual stream after layer l (h_{-1} the input of
layer 0):

    n_l = ||h_l||_2,   d_l = n_l - n_{l-1}
    t_0 = 0,           t_l = alpha * (max_{j<l} d_j - min_{j<l} d_j)
    layer l is activated iff d_l >= t_l, a void otherwise.

``||h||^2`` is the reduction RMSNorm already computes, so the LAC step rides
on the residual add + RMSNorm that starts every layer:
:func:`add_rmsnorm_lac` does both in one pass. It runs the Triton kernel of
``kernels/lac_triton.py`` on CUDA and :func:`add_rmsnorm_lac_reference`
(plain PyTorch, the kernel's test oracle) elsewhere, behind one custom op so
that torch.compile and CUDA graphs see a single opaque call.

``LacState`` carries, per token row, what the next layer needs: the previous
norm and the running max/min of d. Norms are fp32 whatever the activations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LacState:
    """Running LAC state of a batch of token rows."""

    prev_norm: torch.Tensor  # [T] fp32, n_{l-1}
    max_d: torch.Tensor  # [T] fp32, max of d over layers seen (-inf before any)
    min_d: torch.Tensor  # [T] fp32, min of d over layers seen (+inf before any)
    alpha: torch.Tensor  # [T] fp32, per row: requests in one batch differ
    layers_seen: int = 0

    @classmethod
    def start(cls, h_input: torch.Tensor, alpha: torch.Tensor) -> LacState:
        """State before layer 0, from h_{-1} (the embeddings)."""
        rows = h_input.shape[0]
        device = h_input.device
        return cls(
            prev_norm=row_l2_norm(h_input),
            max_d=torch.full((rows,), float("-inf"), device=device),
            min_d=torch.full((rows,), float("inf"), device=device),
            alpha=alpha.to(device=device, dtype=torch.float32),
        )


def row_l2_norm(h: torch.Tensor) -> torch.Tensor:
    """||h||_2 over the hidden dimension, per row, in fp32."""
    return torch.linalg.vector_norm(h.float(), dim=-1)


def add_rmsnorm_lac_reference(
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
    """One pass of: h = residual (+ x unless the row skips), RMSNorm(h), LAC on ||h||.

    Returns ``(normed, h, norm, d, max_d, min_d, activated, kept)``; ``kept``
    takes h on rows that are activated and in ``mask_rows`` (mask mode reads
    out the last activated layer); an empty ``kept`` ([0, D]) means no row is
    in mask mode. Inputs are not modified.
    """
    hf = residual.float() + torch.where(skip.unsqueeze(-1), 0.0, x.float())
    h = hf.to(residual.dtype)
    sq = hf.pow(2).sum(dim=-1)
    norm = sq.sqrt()
    inv_rms = torch.rsqrt(sq / hf.shape[-1] + eps)
    normed = (hf * inv_rms.unsqueeze(-1)).to(residual.dtype) * weight
    d = norm - prev_norm
    threshold = torch.zeros_like(d) if first_layer else alpha * (max_d - min_d)
    activated = d >= threshold
    if kept.shape[0] == 0:  # no row is in mask mode: nothing to keep
        new_kept = kept.clone()  # a custom op may not return its input
    else:
        new_kept = torch.where((activated & mask_rows).unsqueeze(-1), h, kept)
    return (
        normed,
        h,
        norm,
        d,
        torch.maximum(max_d, d),
        torch.minimum(min_d, d),
        activated,
        new_kept,
    )


@torch.library.custom_op("vllm_void::add_rmsnorm_lac", mutates_args=())
def _add_rmsnorm_lac_op(
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
) -> tuple[
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
    torch.Tensor,
]:
    args = (
        x,
        residual,
        weight,
        eps,
        skip,
        prev_norm,
        max_d,
        min_d,
        alpha,
        first_layer,
        kept,
        mask_rows,
    )
    if x.is_cuda:
        from vllm_void.kernels.lac_triton import add_rmsnorm_lac_triton

        return add_rmsnorm_lac_triton(*args)
    return add_rmsnorm_lac_reference(*args)


@_add_rmsnorm_lac_op.register_fake
def _(x, residual, weight, eps, skip, prev_norm, max_d, min_d, alpha, first_layer, kept, mask_rows):
    rows = residual.shape[0]
    vec = residual.new_empty((rows,), dtype=torch.float32)
    return (
        torch.empty_like(residual),
        torch.empty_like(residual),
        vec,
        torch.empty_like(vec),
        torch.empty_like(vec),
        torch.empty_like(vec),
        residual.new_empty((rows,), dtype=torch.bool),
        torch.empty_like(kept),
    )


def add_rmsnorm_lac(
    x: torch.Tensor,
    residual: torch.Tensor,
    weight: torch.Tensor,
    eps: float,
    skip: torch.Tensor,
    state: LacState,
    kept: torch.Tensor,
    mask_rows: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Residual add + RMSNorm + LAC for a batch; updates ``state``.

    Returns ``(normed, h, activated, kept)``.
    """
    normed, h, norm, _, max_d, min_d, activated, kept = _add_rmsnorm_lac_op(
        x,
        residual,
        weight,
        eps,
        skip,
        state.prev_norm,
        state.max_d,
        state.min_d,
        state.alpha,
        state.layers_seen == 0,
        kept,
        mask_rows,
    )
    state.prev_norm, state.max_d, state.min_d = norm, max_d, min_d
    state.layers_seen += 1
    return normed, h, activated, kept
