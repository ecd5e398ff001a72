"""L2 Adaptive Computation (LAC): the per-layer maths, in plain PyTorch.

For one token, with h_l the residual stream after layer l (h_{-1} the input of
layer 0):

    n_l = ||h_l||_2,   d_l = n_l - n_{l-1}
    t_0 = 0,           t_l = alpha * (max_{j<l} d_j - min_{j<l} d_j)
    layer l is activated iff d_l >= t_l, a void otherwise.

``LacState`` carries, per token row, what the next layer needs: the previous
norm and the running max/min of d over the layers seen so far. Norms are taken
in fp32 whatever the activations' dtype.
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


def lac_observe(state: LacState, h: torch.Tensor) -> torch.Tensor:
    """Judge the next layer from its output stream ``h``; returns the activation bits.

    Updates ``state`` in place so that it describes the layers up to this one.
    """
    norm = row_l2_norm(h)
    d = norm - state.prev_norm
    if state.layers_seen == 0:
        threshold = torch.zeros_like(d)
    else:
        threshold = state.alpha * (state.max_d - state.min_d)
    activated = d >= threshold
    state.prev_norm = norm
    state.max_d = torch.maximum(state.max_d, d)
    state.min_d = torch.minimum(state.min_d, d)
    state.layers_seen += 1
    return activated
