"""Mistral family (the sliding window lives in vLLM's attention metadata)."""

from vllm.model_executor.models.mistral import MistralForCausalLM

from vllm_void.models import VoidCausalLM


class VoidMistralForCausalLM(VoidCausalLM, MistralForCausalLM):
    pass
