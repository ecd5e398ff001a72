"""Kernels of vllm-void: the LAC maths (installed as ``vllm_void.kernels``)."""
