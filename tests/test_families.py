"""Trace and skip on small random Mistral (sliding window) and Qwen2 models.

No Mistral checkpoint is reachable here, and a random Qwen2 exercises the
qkv bias; both are checked against the transformers LAC reference.
"""

from __future__ import annotations

import gc

import pytest
import torch
from conftest import engine_args
from lac_reference import reference_trace
from vllm import LLM, SamplingParams

from vllm_void.engine import generate

pytestmark = pytest.mark.slow
NUM_LAYERS = 8


def _config(family: str):
    from transformers import MistralConfig, Qwen2Config

    common = dict(
        vocab_size=512,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.1,
        tie_word_embeddings=False,
    )
    if family == "mistral":
        # Prompts below are longer than the window, so it matters.
        return MistralConfig(sliding_window=16, **common)
    return Qwen2Config(use_sliding_window=False, **common)


@pytest.fixture(scope="module", params=["mistral", "qwen2"])
def family(request, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = _config(request.param)
    hf = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    path = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(path)
    llm = LLM(str(path), skip_tokenizer_init=True, **engine_args(max_model_len=512))
    yield request.param, llm, hf
    del llm
    gc.collect()


def _prompts(seed: int, count: int = 4, length: int = 40) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, 512, (length + 3 * i,), generator=g).tolist() for i in range(count)]


def test_trace_matches_transformers(family):
    name, llm, hf = family
    alpha = 0.5
    params = SamplingParams(
        temperature=0.0,
        max_tokens=12,
        ignore_eos=True,
        extra_args={"void_mode": "trace", "void_trace": True, "void_alpha": alpha},
    )
    results = generate(llm, [{"prompt_token_ids": p} for p in _prompts(1)], params)
    equal = total = 0
    shares = {"prefill": [0, 0, 0], "decode": [0, 0, 0]}  # engine on, ref on, count
    for out, report in results:
        prompt = list(out.prompt_token_ids)
        gen = list(out.outputs[0].token_ids)
        ref, _, _ = reference_trace(hf, prompt + gen[:-1], alpha)
        rows = report["trace"]["prefill"] + report["trace"]["decode"]
        assert len(rows) == len(prompt) + len(gen) - 1
        for pos, (bits, (ref_bits, margins)) in enumerate(zip(rows, ref, strict=True)):
            phase = shares["prefill" if pos < len(prompt) else "decode"]
            phase[0] += sum(bits)
            phase[1] += sum(ref_bits)
            phase[2] += len(bits)
            for b, rb, m in zip(bits, ref_bits, margins, strict=True):
                if m >= 1e-4:
                    equal += b == rb
                    total += 1
    assert equal / total >= 0.995, name
    for on, ref_on, count in shares.values():
        assert abs(on - ref_on) / count <= 0.005, name


def test_adaptive_skip_runs_and_reports(family):
    name, llm, _ = family
    params = SamplingParams(
        temperature=0.0,
        max_tokens=16,
        ignore_eos=True,
        extra_args={"void_ratio": 0.25, "void_policy": "adaptive"},
    )
    ((out, report),) = generate(llm, [{"prompt_token_ids": _prompts(2, count=1)[0]}], params)
    assert len(out.outputs[0].token_ids) == 16
    assert len(report["skipped_layers"]["decode"]) == round(0.25 * NUM_LAYERS), name
    assert report["layers_used"]["decode"] < 1.0
