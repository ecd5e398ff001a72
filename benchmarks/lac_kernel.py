"""Micro-benchmark of the fused add+RMSNorm+LAC kernel.

Compares, per (hidden, tokens): the Triton kernel (CUDA only), the unfused
sequence of torch ops (``add_rmsnorm_lac_reference``) and vLLM's own fused
add+RMSNorm alone (no LAC), reporting time and achieved memory bandwidth for
the bytes each must move. On a CPU only the last two run.

usage: python benchmarks/lac_kernel.py [--dtype bfloat16] [--hidden 896 4096 8192]
       [--tokens 1 64 4096] [--output results/lac_kernel.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vllm_void.kernels.lac import add_rmsnorm_lac_reference

H200_BANDWIDTH = 4.8e12  # bytes/s, the H200's HBM3e peak


def bench(fn, device: str, reps: int = 50) -> float:
    """Median seconds per call."""
    if device == "cuda":
        from triton.testing import do_bench

        return do_bench(fn, warmup=25, rep=100, return_mode="median") / 1e3
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def case(tokens: int, hidden: int, dtype: torch.dtype, device: str) -> list:
    g = torch.Generator(device=device).manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g, device=device)

    rows = torch.zeros(tokens, dtype=torch.bool, device=device)
    return [
        rand(tokens, hidden).to(dtype),
        rand(tokens, hidden).to(dtype),
        (1 + 0.1 * rand(hidden)).to(dtype),
        1e-6,
        rows,
        rand(tokens).abs() * 10,
        rand(tokens).abs(),
        -rand(tokens).abs(),
        torch.full((tokens,), 0.8, device=device),
        False,
        torch.empty(0, hidden, dtype=dtype, device=device),
        rows,
    ]


def measure(hidden: int, tokens: int, dtype: torch.dtype, device: str) -> dict:
    """Time the three implementations on one shape; print and return a row."""
    from vllm import _custom_ops as ops

    a = case(tokens, hidden, dtype, device)
    size = dtype.itemsize
    # Reads x, residual; writes h, normed; per row 6 scalars in, 5 out.
    lac_bytes = 4 * tokens * hidden * size + hidden * size + tokens * (6 * 4 + 5 * 4)
    norm_bytes = 4 * tokens * hidden * size + hidden * size
    x, res = a[0].clone(), a[1].clone()
    timings = {
        "torch_unfused": bench(lambda: add_rmsnorm_lac_reference(*a), device),
        "vllm_fused_add_rmsnorm": bench(lambda: ops.fused_add_rms_norm(x, res, a[2], 1e-6), device),
    }
    if device == "cuda":
        from vllm_void.kernels.lac_triton import add_rmsnorm_lac_triton

        timings["triton_fused_lac"] = bench(lambda: add_rmsnorm_lac_triton(*a), device)
    dtype_name = str(dtype).removeprefix("torch.")
    row = {"hidden": hidden, "tokens": tokens, "dtype": dtype_name, "device": device}
    for name, seconds in timings.items():
        moved = norm_bytes if name.startswith("vllm") else lac_bytes
        row[name] = {"us": seconds * 1e6, "GB_per_s": moved / seconds / 1e9}
    if "triton_fused_lac" in timings:
        row["triton_share_of_h200_peak"] = (
            lac_bytes / timings["triton_fused_lac"] / (H200_BANDWIDTH)
        )
        row["triton_vs_vllm_norm"] = timings["triton_fused_lac"] / timings["vllm_fused_add_rmsnorm"]
    print(
        f"hidden {hidden:5d} tokens {tokens:5d}: "
        + "  ".join(
            f"{k} {v['us']:.1f}us {v['GB_per_s']:.0f}GB/s"
            for k, v in row.items()
            if isinstance(v, dict)
        )
    )
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--hidden", type=int, nargs="+", default=[896, 4096, 8192])
    p.add_argument("--tokens", type=int, nargs="+", default=[1, 64, 4096])
    p.add_argument("--output", default="results/lac_kernel.json")
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype)
    rows = [
        measure(hidden, tokens, dtype, device) for hidden in args.hidden for tokens in args.tokens
    ]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
