"""Benchmarks: accuracy, fidelity and speed of void settings against stock vLLM."""
