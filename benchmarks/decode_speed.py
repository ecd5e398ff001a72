"""Decode tokens/s of void skipping against stock vLLM, in the same run.

Each engine runs in its own process (the stock ones with ``VLLM_PLUGINS=""``,
so they are vLLM's own model classes) on the same machine, one after the
other; results are reported as ratios to stock, with the median of several
repetitions and their spread. Also measures f, the share of decode time
spent inside the decoder layers at ratio 0, which bounds the ideal speed-up
1 / (1 - r f) of skipping a share r of the layers.

usage: python benchmarks/decode_speed.py --model smollm2 [--batch 1 16] [--ratios 0 0.25 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROMPT = "Write a long story about a lighthouse keeper and a storm."


def _decode_rate(llm, batch: int, extra: dict, tokens: int, reps: int) -> list[float]:
    from vllm import SamplingParams

    from vllm_void.engine import chat_prompts

    prompts = chat_prompts(llm, [f"{PROMPT} (version {i})" for i in range(batch)])

    def run(max_tokens: int) -> float:
        params = SamplingParams(
            temperature=0.0, max_tokens=max_tokens, ignore_eos=True, extra_args=extra
        )
        start = time.perf_counter()
        llm.generate(prompts, params, use_tqdm=False)
        return time.perf_counter() - start

    run(4)  # warm-up
    rates = []
    for _ in range(reps):
        prefill = run(1)
        total = run(tokens)
        rates.append(batch * (tokens - 1) / max(total - prefill, 1e-9))
    return rates


def _layer_share(llm, batch: int, tokens: int) -> float:
    """f: share of decode wall time spent in decoder layers (in-process engine)."""
    from vllm_void.engine import chat_prompts

    model = llm.llm_engine.model_executor.driver_worker.worker.model_runner.get_model()
    spent = [0.0]
    starts: dict[int, float] = {}

    def pre(module, _args):
        starts[id(module)] = time.perf_counter()

    def post(module, _args, _out):
        spent[0] += time.perf_counter() - starts.pop(id(module))

    handles = []
    for layer in model.model.layers:
        handles += [layer.register_forward_pre_hook(pre), layer.register_forward_hook(post)]
    from vllm import SamplingParams

    prompts = chat_prompts(llm, [PROMPT] * batch)
    try:
        times = []
        for max_tokens in (1, tokens):
            spent[0] = 0.0
            start = time.perf_counter()
            llm.generate(
                prompts,
                SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True),
                use_tqdm=False,
            )
            times.append((time.perf_counter() - start, spent[0]))
    finally:
        for h in handles:
            h.remove()
    (t1, s1), (tn, sn) = times
    return (sn - s1) / (tn - t1)


def worker(args: argparse.Namespace) -> None:
    from vllm import LLM

    from vllm_void.engine import engine_defaults, ensure_profile
    from vllm_void.fetch import resolve_model

    engine = {"max_model_len": 2048, "seed": 0} | engine_defaults()
    if "compiled" in args.kind:
        engine["enforce_eager"] = False
    if args.kind.endswith("custom-ops"):
        # vLLM's C++ ops stay on inside the compiled graph, so the eager
        # void path calls the fast kernels too.
        engine["compilation_config"] = {"custom_ops": ["all"]}
    llm = LLM(resolve_model(args.model), **engine)
    results = []
    is_void = args.kind.startswith("void")
    ratios = args.ratios if is_void else [0.0]
    if is_void:
        ensure_profile(llm)
    for batch in args.batch:
        for ratio in ratios:
            extra = {"void_ratio": ratio} if is_void else {}
            rates = _decode_rate(llm, batch, extra, args.tokens, args.reps)
            results.append({"kind": args.kind, "batch": batch, "ratio": ratio, "rates": rates})
        if is_void:
            # The cost of tracing: LAC on every layer, outputs unchanged.
            rates = _decode_rate(llm, batch, {"void_mode": "trace"}, args.tokens, args.reps)
            results.append(
                {"kind": args.kind + "-trace", "batch": batch, "ratio": 0.0, "rates": rates}
            )
        if args.kind == "stock-eager":
            results.append(
                {"kind": "layer-share", "batch": batch, "f": _layer_share(llm, batch, args.tokens)}
            )
    Path(args.out).write_text(json.dumps(results))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    p.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument(
        "--kinds",
        nargs="+",
        default=["stock-compiled", "stock-eager", "void", "void-compiled"],
        help="engines to run; *-compiled use vLLM's default torch.compile; "
        "void-compiled-custom-ops also keeps vLLM's C++ ops on",
    )
    p.add_argument("--output", default="results/decode_speed.json")
    p.add_argument("--kind", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.kind:
        worker(args)
        return

    rows = []
    for kind in args.kinds:
        env = dict(os.environ)
        if kind.startswith("stock"):
            env["VLLM_PLUGINS"] = ""
        # In-process engine, so the layer-share hooks can reach the model.
        env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        out = Path(args.output).with_suffix(f".{kind}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            __file__,
            "--kind",
            kind,
            "--out",
            str(out),
            "--model",
            args.model,
            "--tokens",
            str(args.tokens),
            "--reps",
            str(args.reps),
            "--batch",
            *map(str, args.batch),
            "--ratios",
            *map(str, args.ratios),
        ]
        subprocess.run(cmd, env=env, check=True)
        rows += json.loads(out.read_text())

    def median(kind: str, batch: int, ratio: float = 0.0) -> float:
        (row,) = [
            r for r in rows if r["kind"] == kind and r["batch"] == batch and r["ratio"] == ratio
        ]
        return statistics.median(row["rates"])

    report = {"model": args.model, "rows": rows, "summary": []}
    print(f"model {args.model}: decode tokens/s (median of {args.reps}), ratio to stock")
    for batch in args.batch:
        base = {k: median(k, batch) for k in args.kinds if k.startswith("stock")}
        (f_row,) = [r for r in rows if r["kind"] == "layer-share" and r["batch"] == batch] or [
            {"f": float("nan")}
        ]
        f = f_row["f"]
        print(
            f"batch {batch}: stock "
            + ", ".join(f"{k} {v:.1f}" for k, v in base.items())
            + f"; f = {f:.3f}"
        )
        void_rows = [r for r in rows if r["kind"].startswith("void") and r["batch"] == batch]
        for row in void_rows:
            rate = statistics.median(row["rates"])
            ideal = 1 / (1 - row["ratio"] * f)
            entry = {
                "kind": row["kind"],
                "batch": batch,
                "ratio": row["ratio"],
                "tokens_per_s": rate,
                "spread": [min(row["rates"]), max(row["rates"])],
                "f": f,
                "ideal_speedup": ideal,
            }
            for k, v in base.items():
                entry[f"vs_{k}"] = rate / v
            entry["of_ideal_vs_stock-eager"] = entry.get("vs_stock-eager", float("nan")) / ideal
            report["summary"].append(entry)
            print(
                f"  {row['kind']:18s} ratio {row['ratio']:.2f}: {rate:.1f} tok/s "
                + " ".join(f"{k}={v:.3f}x" for k, v in entry.items() if k.startswith("vs_"))
                + f" ideal {ideal:.3f}x"
            )
    Path(args.output).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
