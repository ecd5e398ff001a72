"""OpenAI-compatible front end of vllm-void (installed as ``vllm_void.server``)."""
