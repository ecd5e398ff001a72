"""Speed of void settings against stock vLLM, in the same run.

Each engine runs in its own process, one after the other on the same
machine: the stock baselines with ``VLLM_PLUGINS=""`` (vLLM's own model
classes; ``stock-compiled`` is vLLM's default torch.compile/CUDA-graph
configuration, ``stock-eager`` the eager one), then the void engine running
every setting. Prefix caching is off so that repetitions really prefill.

For a batch of ``b`` prompts of ``P`` tokens, one timed ``generate`` with
``max_tokens=1`` gives the time to first token (TTFT) and prefill tokens/s
(b * P / TTFT); one with ``max_tokens=N`` (``ignore_eos``) gives decode
tokens/s (b * (N - 1) / (t_N - TTFT)) and the inter-token latency
((t_N - TTFT) / (N - 1)). Each is repeated; medians and spreads are kept,
and every void setting is reported as ratios to each baseline's medians.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vllm_void.benchmarks.settings import Setting, parse_settings

BASELINES = ("stock-compiled", "stock-eager")
# The void engine eager (the default), or compiled with vLLM's C++ ops kept
# on, so the stock path is compiled and the void path calls the fast kernels.
VOID_ENGINES = ("void", "void-compiled")
STORY = (
    "The lighthouse keeper had watched the sea for thirty years, and in that time he had "
    "learned to read its moods the way other men read newspapers. "
)
METRICS = ("prefill_tokens_per_s", "decode_tokens_per_s", "ttft_s", "itl_s")


def _prompts(llm: Any, batch: int, prompt_tokens: int) -> list[list[int]]:
    """``batch`` distinct prompts of exactly ``prompt_tokens`` tokens."""
    tokenizer = llm.get_tokenizer()
    prompts = []
    for i in range(batch):
        ids = tokenizer.encode(f"Story {i}. " + STORY * (prompt_tokens // 20 + 2))
        prompts.append(ids[:prompt_tokens])
    return prompts


def measure(
    llm: Any, fields: dict[str, Any], batch: int, prompt_tokens: int, tokens: int, reps: int
) -> dict[str, Any]:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    prompts = [TokensPrompt(prompt_token_ids=p) for p in _prompts(llm, batch, prompt_tokens)]

    def timed(max_tokens: int) -> float:
        params = SamplingParams(
            temperature=0.0, max_tokens=max_tokens, ignore_eos=True, extra_args=dict(fields)
        )
        start = time.perf_counter()
        llm.generate(prompts, params, use_tqdm=False)
        return time.perf_counter() - start

    timed(4)  # warm-up
    runs = {m: [] for m in METRICS}
    for _ in range(reps):
        ttft = timed(1)
        decode = max(timed(tokens) - ttft, 1e-9)
        runs["ttft_s"].append(ttft)
        runs["prefill_tokens_per_s"].append(batch * prompt_tokens / ttft)
        runs["decode_tokens_per_s"].append(batch * (tokens - 1) / decode)
        runs["itl_s"].append(decode / (tokens - 1))
    return {
        m: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
        for m, v in runs.items()
    }


def worker(args: Any) -> None:
    """One engine (a baseline, or the void engine with every setting)."""
    from vllm import LLM

    from vllm_void.engine import engine_defaults, ensure_profile
    from vllm_void.fetch import resolve_model

    engine = {"max_model_len": 4096, "seed": 0, "enable_prefix_caching": False}
    engine |= engine_defaults()
    if args.kind.endswith("compiled"):
        engine.pop("enforce_eager")
    if args.kind == "void-compiled":
        engine["compilation_config"] = {"custom_ops": ["all"]}
    llm = LLM(resolve_model(args.model), **engine)
    if args.kind in VOID_ENGINES:
        settings = parse_settings(args.settings)
        policies = {p.policy for s in settings for p in (s.params.prefill, s.params.decode)}
        ensure_profile(llm, with_block_influence="shortgpt" in policies)
        named = [(s.name, s.fields) for s in settings]
    else:
        named = [(args.kind, {})]
    rows = []
    for batch in args.batch:
        for name, fields in named:
            row = measure(llm, fields, batch, args.prompt_tokens, args.tokens, args.reps)
            rows.append({"engine": args.kind, "setting": name, "batch": batch} | row)
            print(
                f"{args.kind:14s} {name:16s} batch {batch:3d}: decode "
                f"{row['decode_tokens_per_s']['median']:8.1f} tok/s, prefill "
                f"{row['prefill_tokens_per_s']['median']:8.1f} tok/s",
                flush=True,
            )
    Path(args.out).write_text(json.dumps(rows))


def run_speed(
    model: str,
    settings: Sequence[Setting],
    batches: Sequence[int] = (1, 8, 32),
    baselines: Sequence[str] = BASELINES,
    prompt_tokens: int = 256,
    tokens: int = 32,
    reps: int = 3,
    workdir: Path = Path("results"),
    void_engines: Sequence[str] = ("void",),
) -> dict[str, Any]:
    """Every baseline and every setting; rows plus ratios to each baseline."""
    unknown = (set(baselines) - set(BASELINES)) | (set(void_engines) - set(VOID_ENGINES))
    if unknown:
        raise ValueError(
            f"engines: unknown {sorted(unknown)}; choose from {list(BASELINES + VOID_ENGINES)}"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for kind in [*baselines, *void_engines]:
        env = dict(os.environ)
        if kind not in VOID_ENGINES:
            env["VLLM_PLUGINS"] = ""
        out = workdir / f"speed.{kind}.json"
        cmd = [
            sys.executable, "-m", __name__, "--kind", kind, "--out", str(out),
            "--model", model, "--prompt-tokens", str(prompt_tokens), "--tokens", str(tokens),
            "--reps", str(reps), "--batch", *map(str, batches),
            "--settings", *[s.name if s.family != "custom" else json.dumps(
                {"name": s.name} | s.fields) for s in settings],
        ]  # fmt: skip
        subprocess.run(cmd, env=env, check=True)
        rows += json.loads(out.read_text())
    return {"rows": rows, "ratios": speed_ratios(rows, baselines)}


def speed_ratios(rows: Sequence[dict[str, Any]], baselines: Sequence[str]) -> list[dict]:
    """Each void row's medians over each baseline's medians at the same batch."""
    base = {(r["engine"], r["batch"]): r for r in rows if r["engine"] in baselines}
    off = {
        (r["engine"], r["batch"]): r
        for r in rows
        if r["engine"] in VOID_ENGINES and r["setting"] == "off"
    }
    ratios = []
    for row in rows:
        if row["engine"] not in VOID_ENGINES:
            continue
        # The eager void engine's rows keep plain setting names (the plots'
        # default); other void engines' rows are prefixed with the engine.
        prefix = "" if row["engine"] == "void" else row["engine"] + "/"
        entry = {"setting": prefix + row["setting"], "batch": row["batch"]}
        references = {b: base[(b, row["batch"])] for b in baselines}
        if (row["engine"], row["batch"]) in off:
            references["void-off"] = off[(row["engine"], row["batch"])]
        for ref_name, ref in references.items():
            for metric in ("decode_tokens_per_s", "prefill_tokens_per_s"):
                entry[f"{metric.split('_')[0]}_speedup_vs_{ref_name}"] = (
                    row[metric]["median"] / ref[metric]["median"]
                )
            # Latencies as "times the baseline's": below 1 is faster.
            for metric in ("ttft_s", "itl_s"):
                entry[f"{metric[:-2]}_ratio_vs_{ref_name}"] = (
                    row[metric]["median"] / ref[metric]["median"]
                )
        ratios.append(entry)
    return ratios


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="speed worker (use `vllm-void bench speed`)")
    p.add_argument("--kind", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--prompt-tokens", type=int, required=True)
    p.add_argument("--tokens", type=int, required=True)
    p.add_argument("--reps", type=int, required=True)
    p.add_argument("--batch", type=int, nargs="+", required=True)
    p.add_argument("--settings", nargs="+", required=True)
    worker(p.parse_args())


if __name__ == "__main__":
    main()
