"""An independent LAC reference on top of transformers, for the tests only.

It restates DESIGN.md section 1 directly with plain Python floats over the
hidden states that forward hooks on each HF decoder layer capture (the
residual stream after each layer, before the final norm). It shares no code
with vllm_void.
"""

from __future__ import annotations

import math

import torch


def layer_outputs(model, token_ids: list[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(h_{-1}, [h_0 .. h_{L-1}]) for every position, each [T, D] fp32."""
    captured: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        captured.append((output[0] if isinstance(output, tuple) else output)[0].float())

    layers = model.model.layers
    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        with torch.no_grad():
            ids = torch.tensor([token_ids])
            embeds = model.model.embed_tokens(ids)[0].float()
            model(ids)
    finally:
        for h in handles:
            h.remove()
    return embeds, captured


def lac_decisions(norms: list[float], alpha: float) -> tuple[list[int], list[float]]:
    """Activation bits for one token from its norms [n_{-1}, n_0, .., n_{L-1}],
    and |d_l - t_l| per layer: how far each decision is from a tie."""
    bits, margins = [], []
    deltas: list[float] = []
    for layer in range(1, len(norms)):
        d = norms[layer] - norms[layer - 1]
        threshold = 0.0 if not deltas else alpha * (max(deltas) - min(deltas))
        bits.append(1 if d >= threshold else 0)
        margins.append(abs(d - threshold))
        deltas.append(d)
    return bits, margins


def reference_trace(model, token_ids: list[int], alpha: float):
    """Per-position (bits, margins, hidden states) of a full forward over ``token_ids``."""
    embeds, hs = layer_outputs(model, token_ids)
    per_pos = []
    for t in range(len(token_ids)):
        norms = [math.sqrt(float((embeds[t].double() ** 2).sum()))]
        norms += [math.sqrt(float((h[t].double() ** 2).sum())) for h in hs]
        per_pos.append(lac_decisions(norms, alpha))
    return per_pos, embeds, hs


def mask_greedy(model, prompt_ids: list[int], alpha: float, max_tokens: int) -> list[int]:
    """Greedy decoding where each step reads out h at the last activated layer."""
    ids = list(prompt_ids)
    out = []
    for _ in range(max_tokens):
        per_pos, embeds, hs = reference_trace(model, ids, alpha)
        bits = per_pos[-1][0]
        last = max((i for i, b in enumerate(bits) if b), default=None)
        h = embeds[-1] if last is None else hs[last][-1]
        with torch.no_grad():
            logits = model.lm_head(model.model.norm(h[None, None, :]))[0, -1]
        token = int(torch.argmax(logits))
        out.append(token)
        ids.append(token)
    return out
