"""The benchmarks on the real engine: the ShortGPT peer and a tiny grid end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import chat

from vllm_void.benchmarks import datasets
from vllm_void.benchmarks.accuracy import label_tokens, loglik_prompt
from vllm_void.block_influence import block_influence
from vllm_void.engine import ensure_profile, generate

pytestmark = pytest.mark.slow
NUM_LAYERS = 30


def test_block_influence_matches_hidden_states(smollm2_hf, smollm2_path):
    """Hooks (the code) against HF's own hidden-state outputs (the reference):
    layer l's input is hidden_states[l], its output hidden_states[l + 1]
    (the last entry is after the final norm, so the last layer is left out)."""
    tokenizer_ids = [[1, 504, 3575, 282, 4649, 314, 7042, 30], [1, 11, 3012, 1095, 47, 9, 12]]
    bi = block_influence(smollm2_path, tokenizer_ids)
    cos_sum = np.zeros(NUM_LAYERS)
    count = 0
    with torch.no_grad():
        for ids in tokenizer_ids:
            hs = smollm2_hf(torch.tensor([ids]), output_hidden_states=True).hidden_states
            for layer in range(NUM_LAYERS - 1):
                a, b = hs[layer][0, 1:], hs[layer + 1][0, 1:]
                cos_sum[layer] += torch.nn.functional.cosine_similarity(a, b, dim=-1).sum().item()
            count += len(ids) - 1
    expected = 1 - cos_sum / count
    np.testing.assert_allclose(bi[:-1], expected[:-1], atol=1e-5)
    assert all(0 <= x <= 2 for x in bi)


def test_shortgpt_skips_the_lowest_influence_layers(smollm2):
    profile = ensure_profile(smollm2, with_block_influence=True)
    lowest = sorted(int(i) for i in np.argsort(profile.block_influence, kind="stable")[:8])
    # Empty until the engine has run a step.
    before = smollm2.collective_rpc("void_layer_rows")[0] or [0] * NUM_LAYERS
    params = {"void_ratio": 0.25, "void_policy": "shortgpt"}
    from vllm import SamplingParams

    sp = SamplingParams(temperature=0.0, max_tokens=12, extra_args=params)
    ((out, report),) = generate(smollm2, chat(smollm2, ["Name a colour."]), sp)
    after = smollm2.collective_rpc("void_layer_rows")[0]
    assert report["skipped_layers"]["decode"] == lowest
    decode_rows = len(out.outputs[0].token_ids) - 1
    prompt_rows = len(out.prompt_token_ids) - (out.num_cached_tokens or 0)
    for layer in range(NUM_LAYERS):
        ran = after[layer] - before[layer]
        assert ran == prompt_rows + (0 if layer in lowest else decode_rows), layer


def _hf_loglik_answers(hf_model, tokenizer, questions):
    """Independent reference: the label with the highest logit after "Answer:"."""
    answers = []
    with torch.no_grad():
        for q in questions:
            ids = tokenizer.encode(loglik_prompt(q))
            logits = hf_model(torch.tensor([ids])).logits[0, -1]
            tokens = label_tokens(tokenizer, q.labels)
            scores = {label: logits[t].item() for label, t in tokens.items()}
            ranked = sorted(scores.values(), reverse=True)
            answers.append(max(scores, key=scores.get) if ranked[0] - ranked[1] > 1e-3 else None)
    return answers


def test_tiny_grid_end_to_end(tmp_path, smollm2_hf, smollm2_path):
    from transformers import AutoTokenizer

    out_dir = tmp_path / "grid"
    settings = ["off", "profile:0.25", "shortgpt:0.25", "mask:0.5"]
    cmd = [
        sys.executable, "-m", "vllm_void.cli", "bench", "grid", "--model", "smollm2",
        "--settings", *settings,
        "--tasks", "mmlu-loglik", "mmlu-gen", "humaneval", "fidelity",
        "--limit", "6", "--stride", "2000", "--humaneval-limit", "2",
        "--fidelity-prompts", "2", "--code-max-tokens", "48",
        "--batch", "1", "--baselines", "stock-eager", "--prompt-tokens", "32",
        "--tokens", "8", "--reps", "1", "--output-dir", str(out_dir),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=1500)
    assert proc.returncode == 0, proc.stderr[-12000:]
    grid = json.loads((out_dir / "grid.json").read_text())
    for png in ("tradeoff_speedup", "tradeoff_layers", "layer_usage", "void_heatmap"):
        data = (out_dir / f"{png}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png

    tasks = grid["accuracy"]["tasks"]
    assert set(tasks) == {"mmlu-loglik", "mmlu-gen", "humaneval", "fidelity"}
    for task in tasks.values():
        assert set(task) == set(settings)

    # Log-likelihood MMLU of the full model == transformers on the same prompts.
    questions = datasets.subset(datasets.load_mmlu(), 6, 2000)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    reference = _hf_loglik_answers(smollm2_hf, tokenizer, questions)
    engine = tasks["mmlu-loglik"]["off"]["answers"]
    assert sum(r is not None for r in reference) >= 4
    assert all(r is None or r == e for r, e in zip(reference, engine, strict=True))

    # Layer usage: the answer step and the forced token run in decode.
    assert tasks["mmlu-loglik"]["profile:0.25"]["layers_used"]["decode"] == pytest.approx(22 / 30)
    mask_usage = tasks["mmlu-loglik"]["mask:0.5"]["layers_used"]
    assert mask_usage["decode"] == 1.0  # mask runs every layer...
    assert 0 < mask_usage["activated"]["decode"] < 1  # ...and keeps LAC's share

    # Fidelity: the full model forced along its own greedy reply agrees with
    # itself, which checks the forcing; the static skip does not.
    off, skip = tasks["fidelity"]["off"], tasks["fidelity"]["profile:0.25"]
    assert off["token_agreement"] == 1.0 and off["kl"] < 1e-6
    assert off["greedy_prefix"] == 1.0 and skip["greedy_prefix"] < 1.0
    assert skip["kl"] > 0.01 and skip["perplexity"] != off["perplexity"]

    for name in settings:
        statuses = tasks["humaneval"][name]["status"]
        assert sum(statuses.values()) == 2

    usage = grid["accuracy"]["layer_usage"]
    assert usage["decode"][0] > usage["decode"][-1]  # more alpha, more voids
    speed = {r["setting"]: r for r in grid["speed"]["ratios"]}
    assert set(speed) == set(settings)
    assert all(r["decode_speedup_vs_stock-eager"] > 0 for r in speed.values())
