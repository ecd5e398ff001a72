"""The void-aware decoder loop shared by every model family.

vLLM's decoder layers hand the next layer ``(delta, residual)`` and fuse the
add into the next RMSNorm, so h_l = residual + delta only materialises at the
start of layer l + 1 (or in the final norm). This loop keeps that fusion (so
rows that run every layer are computed exactly as stock vLLM computes them)
and adds, per row:

- LAC: the norm of each h_l, judged by ``kernels.lac`` as soon as it exists;
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

from vllm_void.kernels.lac import LacState, lac_observe
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
    residual = hidden
    delta: torch.Tensor | None = None
    lac = LacState.start(hidden, plan.alpha) if plan.need_lac else None
    activated: list[torch.Tensor] = []
    kept: torch.Tensor | None = hidden.clone() if plan.mask_rows is not None else None

    def observe(h: torch.Tensor) -> None:
        # h is h_l of the layer just finished; judge it while it is in cache.
        bits = lac_observe(lac, h)
        activated.append(bits)
        if kept is not None:
            update = (bits & plan.mask_rows).unsqueeze(-1)
            torch.where(update, h, kept, out=kept)

    for idx, layer in enumerate(model.layers[model.start_layer : model.end_layer]):
        if delta is None:
            normed = layer.input_layernorm(residual)
        else:
            normed, residual = layer.input_layernorm(delta, residual)
        if lac is not None and idx > 0:
            observe(residual)
        skip_rows = plan.skip_mask[:, idx] if plan.any_skip[idx] else None
        delta, residual = run_layer(
            layer, positions, normed, residual, skip_rows, bool(plan.all_skip[idx])
        )

    if delta is None:
        out = model.norm(residual)
    else:
        out, residual = model.norm(delta, residual)
    if lac is not None:
        observe(residual)
        plan.activated = torch.stack(activated, dim=1)
    if kept is not None:
        mask_out = model.norm(kept)
        out = torch.where(plan.mask_rows.unsqueeze(-1), mask_out, out)
    return out
