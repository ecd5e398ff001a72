"""vllm-void: L2 Adaptive Computation (void-layer skipping) inside vLLM."""
