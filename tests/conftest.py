"""Shared engines: one per configuration for the whole session (engine start is ~1 min)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Small KV caches: several engines share this machine's memory in one session.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

HERE = Path(__file__).parent
PROMPTS = [
    "What is the capital of France?",
    "Write a Python function that checks whether a number is prime.",
    "Explain what a black hole is in simple words.",
    "Give me three ideas for a birthday party.",
    "What is 12 times 7?",
    "Name the largest ocean on Earth.",
    "How do I make a cup of tea?",
    "Translate 'thank you very much' into French.",
]


def engine_args(**overrides):
    from vllm_void.engine import engine_defaults

    return {"max_model_len": 2048, "seed": 0} | engine_defaults() | overrides


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    from vllm_void.fetch import fetch_model

    return str(fetch_model("smollm2"))


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    """The void engine on SmolLM2, with a void profile, and small steps so
    that long prompts are prefilled in chunks beside other requests' decodes."""
    from vllm import LLM

    from vllm_void.engine import ensure_profile

    llm = LLM(smollm2_path, **engine_args(max_num_batched_tokens=256, max_num_seqs=16))
    ensure_profile(llm)
    yield llm
    del llm


@pytest.fixture(scope="session")
def smollm2_hf(smollm2_path):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(smollm2_path, dtype=torch.float32).eval()


def stock_greedy(
    model: str, prompts: list, max_tokens: int, tmp_path: Path, **overrides
) -> list[list[int]]:
    """Token ids from stock vLLM (no plugin) in a separate process."""
    env = dict(os.environ, VLLM_PLUGINS="")
    out = tmp_path / "stock_ids.json"
    script = str(HERE / "stock_reference.py")
    args = json.dumps(engine_args(**overrides))
    proc = subprocess.run(
        [sys.executable, script, model, str(max_tokens), args, str(out)],
        input=json.dumps(prompts),
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def chat(llm, questions):
    from vllm_void.engine import chat_prompts

    return chat_prompts(llm, questions)
