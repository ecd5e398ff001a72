"""Llama family (SmolLM2, Llama 3): vLLM's model, with the void-aware forward."""

from vllm.model_executor.models.llama import LlamaForCausalLM

from vllm_void.models import VoidCausalLM


class VoidLlamaForCausalLM(VoidCausalLM, LlamaForCausalLM):
    pass
