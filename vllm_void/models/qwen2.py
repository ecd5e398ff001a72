"""Qwen2 family (qkv bias is handled inside vLLM's Qwen2 attention)."""

from vllm.model_executor.models.qwen2 import Qwen2ForCausalLM

from vllm_void.models import VoidCausalLM


class VoidQwen2ForCausalLM(VoidCausalLM, Qwen2ForCausalLM):
    pass
