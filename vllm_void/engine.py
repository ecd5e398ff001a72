"""Offline use: build an engine with sane defaults, generate with void reports, calibrate.

Plain ``vllm.LLM`` works with the plugin enabled; these helpers add what a
user otherwise has to know: the dtype and execution mode that keep greedy
output right on each device, and how to fetch the per-request void reports
from the workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vllm_void.block_influence import block_influence
from vllm_void.calibration import CALIBRATION_PROMPTS
from vllm_void.fetch import resolve_model
from vllm_void.policy import VoidProfile, load_profile, save_profile


def on_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def engine_defaults() -> dict[str, Any]:
    """Engine arguments that keep void generation correct on this device.

    - CPU: fp32. In bf16 the small GGUF-derived models lose the argmax on
      close calls (SmolLM2 answered the France question wrongly in bf16 and
      rightly in fp32); fp32 costs little at these sizes. ``gpu_memory_utilization``
      is read as a share of the NUMA node's memory on CPU, and the default
      0.92 refuses to start beside other processes.
    - Both: eager execution. Void decisions are data-dependent Python control
      flow around the layers; a captured CUDA graph would replay one path.
    """
    if on_cuda():
        return {"dtype": "auto", "enforce_eager": True}
    return {"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.5}


def make_llm(model: str = "smollm2", **overrides: Any) -> Any:
    """A ``vllm.LLM`` on a built-in model name or a local/hub model."""
    from vllm import LLM

    args = {"max_model_len": 2048, "seed": 0} | engine_defaults() | overrides
    return LLM(resolve_model(model), **args)


def take_reports(llm: Any, request_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The void reports of finished requests, from the (first) worker."""
    return llm.collective_rpc("void_take_reports", args=(list(request_ids),))[0]


def generate(
    llm: Any, prompts: Sequence[Any], sampling_params: Any, **kwargs: Any
) -> list[tuple[Any, dict[str, Any]]]:
    """``llm.generate`` plus each request's void report, in prompt order."""
    outputs = llm.generate(list(prompts), sampling_params, use_tqdm=False, **kwargs)
    reports = take_reports(llm, [o.request_id for o in outputs])
    return [(o, reports.get(o.request_id, {})) for o in outputs]


def chat_prompts(llm: Any, questions: Sequence[str]) -> list[str]:
    """Questions wrapped in the model's chat template."""
    tokenizer = llm.get_tokenizer()
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        for q in questions
    ]


def calibrate(
    llm: Any,
    model_path: str,
    alpha: float = 0.8,
    max_tokens: int = 48,
    with_block_influence: bool = False,
) -> VoidProfile:
    """Measure per-layer void frequency per phase over the built-in calibration
    set and, if asked, the ShortGPT peer's block influence over the same
    prompts and replies."""
    from vllm import SamplingParams

    params = SamplingParams(
        temperature=0.0,
        max_tokens=max_tokens,
        extra_args={"void_mode": "trace", "void_trace": True, "void_alpha": alpha},
    )
    voids = {"prefill": [], "decode": []}
    sequences = []
    for output, report in generate(llm, chat_prompts(llm, CALIBRATION_PROMPTS), params):
        sequences.append(list(output.prompt_token_ids) + list(output.outputs[0].token_ids))
        trace = report["trace"]
        # Position 0 is an attention sink whose norm jumps by orders of
        # magnitude: its bits say nothing about the other tokens.
        voids["prefill"].extend(trace["prefill"][1:])
        voids["decode"].extend(trace["decode"])
    freq = {
        phase: 1.0 - np.asarray(bits, dtype=float).mean(axis=0) for phase, bits in voids.items()
    }
    return VoidProfile(
        model=model_path,
        alpha=alpha,
        prefill=tuple(float(x) for x in freq["prefill"]),
        decode=tuple(float(x) for x in freq["decode"]),
        num_tokens={phase: len(bits) for phase, bits in voids.items()},
        block_influence=block_influence(model_path, sequences) if with_block_influence else None,
    )


def ensure_profile(
    llm: Any, recalibrate: bool = False, with_block_influence: bool = False
) -> VoidProfile:
    """The engine model's void profile; calibrated and saved on first use (and
    again when block influence is asked for and missing)."""
    model_path = llm.llm_engine.model_config.model
    profile = None if recalibrate else load_profile(model_path)
    if profile is None or (with_block_influence and profile.block_influence is None):
        profile = calibrate(llm, model_path, with_block_influence=with_block_influence)
        save_profile(profile)
    llm.collective_rpc("void_set_profile", args=(model_path, profile.to_json()))
    return profile
