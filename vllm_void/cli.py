"""``vllm-void``: fetch models, calibrate void profiles, generate with skipping."""

from __future__ import annotations

import argparse
import json
import sys

from vllm_void.benchmarks.cli import add_bench_parser
from vllm_void.fetch import BUILTIN_MODELS, DEFAULT_MODEL, ModelFetchError, fetch_model
from vllm_void.params import MODES, POLICIES, parse_phase_text, parse_void_params
from vllm_void.server.serve import add_serve_flags, serve


def _void_extra_args(args: argparse.Namespace) -> dict[str, object]:
    flags = {
        "void_ratio": (args.void_ratio, float),
        "void_alpha": (args.void_alpha, float),
        "void_mode": (args.void_mode, str),
        "void_policy": (args.void_policy, str),
    }
    fields = {k: parse_phase_text(v, t) for k, (v, t) in flags.items() if v is not None}
    return fields | ({"void_trace": True} if args.trace else {})


def _add_void_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--void-ratio", help="share of layers skipped in decode, or prefill=R,decode=R")
    p.add_argument("--void-alpha", help="LAC alpha in [0, 1] (default 0.8)")
    p.add_argument("--void-mode", help=f"one of {MODES}, or prefill=M,decode=M")
    p.add_argument("--void-policy", help=f"one of {POLICIES} (skip mode)")
    p.add_argument("--trace", action="store_true", help="print per-token activation bits")


def cmd_fetch_model(args: argparse.Namespace) -> int:
    print(fetch_model(args.name, force=args.force))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from vllm_void.engine import calibrate, make_llm
    from vllm_void.policy import save_profile

    llm = make_llm(args.model)
    profile = calibrate(
        llm,
        llm.llm_engine.model_config.model,
        alpha=args.alpha,
        with_block_influence=args.block_influence,
    )
    path = save_profile(profile)
    print(f"void profile written to {path}")
    for phase in ("prefill", "decode"):
        freq = getattr(profile, phase)
        print(f"{phase:8s} void frequency per layer: " + " ".join(f"{x:.2f}" for x in freq))
    if profile.block_influence is not None:
        bi = profile.block_influence
        print("block influence per layer: " + " ".join(f"{x:.3f}" for x in bi))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from vllm import SamplingParams

    from vllm_void.engine import chat_prompts, ensure_profile, generate, make_llm

    extra = _void_extra_args(args)
    params = parse_void_params(extra)  # refuse bad flags before starting an engine
    llm = make_llm(args.model)
    policies = {p.policy for p in (params.prefill, params.decode) if p.skips}
    if policies - {"adaptive"}:
        ensure_profile(llm, with_block_influence="shortgpt" in policies)
    prompts = [args.prompt] if args.raw else chat_prompts(llm, [args.prompt])
    sampling = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, extra_args=extra)
    ((output, report),) = generate(llm, prompts, sampling)
    print(output.outputs[0].text)
    trace = report.pop("trace", None)
    print("--- void:", json.dumps(report))
    if trace is not None:
        for phase, rows in trace.items():
            for i, bits in enumerate(rows):
                print(f"{phase}[{i:3d}] " + "".join("#" if b else "." for b in bits))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vllm-void", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fetch-model", help="convert a built-in GGUF model to a cached HF dir")
    p.add_argument("name", choices=sorted(BUILTIN_MODELS))
    p.add_argument("--force", action="store_true", help="convert again even if cached")
    p.set_defaults(func=cmd_fetch_model)

    p = sub.add_parser("calibrate", help="measure and save a model's void profile")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    p.add_argument("--alpha", type=float, default=0.8)
    p.add_argument(
        "--block-influence",
        action="store_true",
        help="also measure ShortGPT's block influence (for void_policy 'shortgpt')",
    )
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("generate", help="generate one reply with void skipping")
    p.add_argument("prompt", nargs="?", default="What is the capital of France?")
    p.add_argument("--model", default=DEFAULT_MODEL, help="built-in name or HF directory")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--raw", action="store_true", help="do not apply the chat template")
    _add_void_flags(p)
    p.set_defaults(func=cmd_generate)

    add_bench_parser(sub)

    p = sub.add_parser(
        "serve",
        help="OpenAI-compatible server (vLLM's, with void fields); other flags go to vllm serve",
    )
    add_serve_flags(p)
    p.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command != "serve" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "serve":
            return serve(args, rest)
        return args.func(args)
    except (ModelFetchError, ValueError) as err:
        print(f"vllm-void: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
