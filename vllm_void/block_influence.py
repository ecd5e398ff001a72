"""Block Influence (ShortGPT, arXiv 2403.03853), the static peer's layer ranking.

BI of layer l = 1 - mean over tokens of cos(h_{l-1}, h_l), the cosine
similarity between the hidden state entering the layer and the one leaving
it. A layer that barely turns the residual stream has low BI; ShortGPT
removes the lowest. Measured with transformers on the model's own weights, so
it is independent of the engine being benchmarked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def block_influence(model_path: str, sequences: Sequence[Sequence[int]]) -> tuple[float, ...]:
    """Per-layer BI over ``sequences`` of token ids (the first token of each,
    an attention sink, left out as in the void profile)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    layers = model.model.layers
    sums = np.zeros(len(layers))
    count = 0

    def hook(index: int):
        def record(_module: Any, args: tuple, kwargs: dict, output: Any) -> None:
            inputs = args[0] if args else kwargs["hidden_states"]
            outputs = output[0] if isinstance(output, tuple) else output
            cos = torch.nn.functional.cosine_similarity(inputs[0, 1:], outputs[0, 1:], dim=-1)
            sums[index] += cos.sum().item()

        return record

    handles = [
        layer.register_forward_hook(hook(i), with_kwargs=True) for i, layer in enumerate(layers)
    ]
    try:
        with torch.no_grad():
            for ids in sequences:
                if len(ids) < 2:
                    continue
                model(torch.tensor([list(ids)]))
                count += len(ids) - 1
    finally:
        for handle in handles:
            handle.remove()
    if count == 0:
        raise ValueError("block influence needs sequences of at least two tokens")
    return tuple(float(1.0 - s / count) for s in sums)
