"""The void-aware decoder loop shared by every model family.

vLLM's decoder layers hand the next layer ``(delta, residual)`` and fuse the
add into the next RMSNorm, so h_l = residual + delta only materialises at the
start of layer l + 1 (or in the final norm). This loop keeps that fusion (so
rows that run every layer are computed exactly as stock vLLM computes them)
and adds, per row:

- LAC: each h_l is judged in the same pass that adds it up and normalises it
  for the next layer (``kernels.lac.add_rmsnorm_lac``, one Triton kernel on
  CUDA); steps that need no LAC keep vLLM's own fused add+RMSNorm;
- ``mask``: the state read out by the final norm is h at the row's last
  activated layer;
- ``skip``: a row that skips layer l adds nothing to its residual stream.
  Its MLP (most of a layer's weights) is not run. Its K/V for layer l is
  still written from the passed-through state, so a later token that does
  run layer l never attends to garbage (DESIGN.md section 3); when no row of
  the step runs layer l, only the q/k/v projection and the cache write run.

Every family's decoder layer names its parts ``input_layernorm``,
``self_attn`` (with ``qkv_proj``, ``rotary_emb``, ``attn``), and
``post_attention_layernorm`` and ``mlp``; that is the whole interface.
"""

from __future__ import annotations

import torch
from torch import nn

from vllm_void.kernels.lac import LacState, add_rmsnorm_lac
from vllm_void.runtime import StepPlan


def fill_kv(self_attn: nn.Module, positions: torch.Tensor, normed: torch.Tensor) -> None:
    """Write this layer's K/V for every row without computing its output."""
    if getattr(self_attn, "do_llama_4_scaling", False):
        self_attn(positions=positions, hidden_states=normed)
        return
    qkv, _ = self_attn.qkv_proj(normed)
    q, k, v = qkv.split([self_attn.q_size, self_attn.kv_size, self_attn.kv_size], dim=-1)
    q, k = self_attn.rotary_emb(positions, q, k)
    # The attention op writes the cache; its output for skipping rows is unused.
    self_attn.attn(q, k, v)


def run_layer(
    layer: nn.Module,
    positions: torch.Tensor,
    normed: torch.Tensor,
    residual: torch.Tensor,
    skip_rows: torch.Tensor | None,
    all_skip: bool,
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """One decoder layer on rows ``~skip_rows``; returns (delta, residual).

    ``residual`` must be h_{l-1}. A None delta means h_l is ``residual`` itself.
    """
    if all_skip:
        fill_kv(layer.self_attn, positions, normed)
        return None, residual
    attn_out = layer.self_attn(positions=positions, hidden_states=normed)
    if skip_rows is None:
        hidden, residual = layer.post_attention_layernorm(attn_out, residual)
        return layer.mlp(hidden), residual
    keep = (~skip_rows).unsqueeze(-1).to(attn_out.dtype)
    hidden, residual = layer.post_attention_layernorm(attn_out * keep, residual)
    run = torch.nonzero(~skip_rows).squeeze(-1)
    delta = torch.zeros_like(hidden)
    delta.index_copy_(0, run, layer.mlp(hidden.index_select(0, run)))
    return delta, residual


def void_decoder_forward(
    model: nn.Module,
    input_ids: torch.Tensor | None,
    positions: torch.Tensor,
    inputs_embeds: torch.Tensor | None,
    plan: StepPlan,
) -> torch.Tensor:
    """Forward of a vLLM ``*Model`` (embeddings, layers, final norm) under ``plan``."""
    hidden = inputs_embeds if inputs_embeds is not None else model.embed_input_ids(input_ids)
    rows = hidden.shape[0]
    residual = hidden
    delta: torch.Tensor | None = None
    lac = LacState.start(hidden, plan.alpha) if plan.need_lac else None
    activated: list[torch.Tensor] = []
    mask_rows = plan.mask_rows
    # mask mode reads out h at each row's last activated layer (h_{-1} if none).
    kept = hidden.clone() if mask_rows is not None else hidden.new_empty((0, hidden.shape[1]))
    if mask_rows is None:
        mask_rows = torch.zeros(rows, dtype=torch.bool, device=hidden.device)
    all_rows = torch.ones(rows, dtype=torch.bool, device=hidden.device)

    def add_and_norm(norm: nn.Module, prev_layer: int) -> torch.Tensor:
        """h_{prev_layer} = residual + delta, normalised for what comes next;
        with LAC on, the same pass judges layer ``prev_layer``."""
        nonlocal residual, kept
        if lac is None:
            if delta is None:
                return norm(residual)
            normed, residual = norm(delta, residual)
            return normed
        skip = plan.skip_mask[:, prev_layer] if delta is not None else all_rows
        x = delta if delta is not None else residual
        normed, residual, bits, kept = add_rmsnorm_lac(
            x, residual, norm.weight, norm.variance_epsilon, skip, lac, kept, mask_rows
        )
        activated.append(bits)
        return normed

    layers = model.layers[model.start_layer : model.end_layer]
    for idx, layer in enumerate(layers):
        if idx == 0:
            normed = layer.input_layernorm(residual)
        else:
            normed = add_and_norm(layer.input_layernorm, idx - 1)
        skip_rows = plan.skip_mask[:, idx] if plan.any_skip[idx] else None
        delta, residual = run_layer(
            layer, positions, normed, residual, skip_rows, bool(plan.all_skip[idx])
        )
    out = add_and_norm(model.norm, len(layers) - 1)
    if lac is not None:
        plan.activated = torch.stack(activated, dim=1)
    if plan.mask_rows is not None:
        out = torch.where(plan.mask_rows.unsqueeze(-1), model.norm(kept), out)
    return out
