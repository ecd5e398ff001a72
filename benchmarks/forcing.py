"""Teacher forcing in the decode phase, as a vLLM logits processor.

A prompt's tokens run in the prefill phase, so scoring text given as a
prompt would never see a setting's decode-phase policy (``void_ratio`` as a
number skips in decode only). Instead the text is *generated*: a request
with ``extra_args[FORCED_FIELD] = [ids]`` may only sample those tokens, one
per step, and then, if ``extra_args[CHOICES_FIELD]`` is given, only one of
the choice tokens. With ``logprobs=k`` vLLM reports each step's log-probs of
the raw logits (its default ``raw_logprobs`` mode), before this processor
masks them: the model's own next-token distribution at every forced position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

FORCED_FIELD = "bench_forced_tokens"
CHOICES_FIELD = "bench_choice_tokens"
PROCESSOR = f"{__name__}:ForcedTokens"


def forced_fields(forced: Sequence[int], choices: Sequence[int] = ()) -> dict[str, Any]:
    """``extra_args`` entries that make a request follow ``forced`` tokens."""
    fields: dict[str, Any] = {FORCED_FIELD: [int(t) for t in forced]}
    if choices:
        fields[CHOICES_FIELD] = [int(t) for t in choices]
    return fields


class ForcedTokens(AdapterLogitsProcessor):
    """Per request: step i keeps only ``forced[i]``, later steps only the choices."""

    def is_argmax_invariant(self) -> bool:
        return False

    def new_req_logits_processor(self, params: Any) -> Callable | None:
        extra = params.extra_args or {}
        forced = list(extra.get(FORCED_FIELD, ()))
        choices = list(extra.get(CHOICES_FIELD, ()))
        if not forced and not choices:
            return None

        def only(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
            step = len(output_ids)
            allowed = [forced[step]] if step < len(forced) else choices
            if not allowed:
                return logits
            keep = torch.full_like(logits, float("-inf"))
            index = torch.tensor(allowed, device=logits.device)
            keep[index] = logits[index]
            return keep

        return only
