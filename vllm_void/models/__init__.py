"""Void-aware model families: thin adapters over vLLM's own model classes."""

from __future__ import annotations

import torch

from vllm_void.decoder import void_decoder_forward
from vllm_void.runtime import RUNTIME


class VoidCausalLM:
    """Mixin for a vLLM ``*ForCausalLM``: route planned steps through LAC.

    A step whose rows are all stock (the plan is None) runs vLLM's own,
    compiled forward unchanged: `off` costs nothing and stays token-identical.
    """

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: object | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor:
        plan = RUNTIME.current
        if plan is None:
            return super().forward(
                input_ids, positions, intermediate_tensors, inputs_embeds, **kwargs
            )
        return void_decoder_forward(self.model, input_ids, positions, inputs_embeds, plan)
