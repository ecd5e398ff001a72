"""The real Qwen2.5-Coder-0.5B-Instruct (Qwen2 family) inside the void engine."""

import gc

import pytest
from conftest import engine_args
from vllm import LLM, SamplingParams

from vllm_void.engine import chat_prompts, generate
from vllm_void.fetch import fetch_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def qwen():
    llm = LLM(str(fetch_model("qwen2.5-coder-0.5b")), **engine_args())
    yield llm
    del llm
    gc.collect()


def test_answers_a_simple_chat_question(qwen):
    prompts = chat_prompts(qwen, ["What is the capital of France? Answer in one sentence."])
    params = SamplingParams(temperature=0.0, max_tokens=24, extra_args={"void_mode": "trace"})
    ((out, report),) = generate(qwen, prompts, params)
    assert "Paris" in out.outputs[0].text
    assert report["num_layers"] == 24
    # LAC ran on every token (trace mode) and found voids in both phases.
    assert 0 < report["activated_share"]["prefill"] < 1
    assert 0 < report["activated_share"]["decode"] < 1
