"""The fused add+RMSNorm+LAC kernel against its PyTorch reference, and the
reference against a slow restatement of the formulas.

On a CPU the Triton kernel runs through Triton's interpreter
(TRITON_INTERPRET=1, set before the kernel module is imported): this checks
its maths, not its speed. benchmarks/gpu_check.sh runs the same tests natively
with VLLM_VOID_KERNEL_DEVICE=cuda, and benchmarks/lac_kernel.py times it.
"""

import os
import sys

import pytest
import torch

from vllm_void.kernels.lac import LacState, add_rmsnorm_lac, add_rmsnorm_lac_reference

DEVICE = os.environ.get("VLLM_VOID_KERNEL_DEVICE", "cpu")
if DEVICE == "cpu":
    if "vllm" in sys.modules:
        # Seen here: once vLLM is imported, Triton's interpreter fails with
        # "Cannot call @triton.jit'd outside of the scope of a kernel".
        # scripts/test.sh runs this file first, in a process of its own.
        pytest.skip("the interpreted kernel needs a process without vLLM", allow_module_level=True)
    os.environ["TRITON_INTERPRET"] = "1"
from vllm_void.kernels.lac_triton import add_rmsnorm_lac_triton  # noqa: E402

EPS = 1e-5


def make_case(rows, hidden, dtype, seed=0, mask=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, hidden, generator=g).to(dtype)
    residual = (torch.randn(rows, hidden, generator=g) * 3).to(dtype)
    weight = (1 + 0.1 * torch.randn(hidden, generator=g)).to(dtype)
    skip = torch.rand(rows, generator=g) < 0.3
    prev_norm = torch.rand(rows, generator=g) * 2 * hidden**0.5
    max_d = torch.rand(rows, generator=g) * 5
    min_d = max_d - torch.rand(rows, generator=g) * 10
    alpha = torch.rand(rows, generator=g)
    kept = (
        torch.randn(rows, hidden, generator=g).to(dtype)
        if mask
        else torch.empty(0, hidden, dtype=dtype)
    )
    mask_rows = torch.rand(rows, generator=g) < 0.5
    args = [x, residual, weight, EPS, skip, prev_norm, max_d, min_d, alpha, False, kept, mask_rows]
    return on_device(args)


def on_device(args: list) -> list:
    return [a.to(DEVICE) if isinstance(a, torch.Tensor) else a for a in args]


TOL = {torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 2e-3}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "rows, hidden", [(0, 576), (1, 576), (7, 896), (33, 1000), (3, 4096), (2, 8192)]
)
@pytest.mark.parametrize("first_layer", [False, True])
def test_kernel_matches_reference(dtype, rows, hidden, first_layer):
    args = make_case(rows, hidden, dtype, seed=rows + hidden, mask=rows % 2 == 1)
    args[9] = first_layer
    ref = add_rmsnorm_lac_reference(*args)
    out = add_rmsnorm_lac_triton(*args)
    names = ["normed", "h", "norm", "d", "max_d", "min_d", "activated", "kept"]
    for name, r, o in zip(names, ref, out, strict=True):
        assert r.shape == o.shape and r.dtype == o.dtype, name
        if name == "activated":
            # Bits may differ only where d is within rounding of the threshold.
            d, thr = (
                ref[3],
                (torch.zeros_like(ref[3]) if first_layer else args[8] * (args[6] - args[7])),
            )
            close = (d - thr).abs() <= 1e-3 * (1 + thr.abs())
            assert torch.equal(r[~close], o[~close]), name
        else:
            torch.testing.assert_close(
                o.float(), r.float(), rtol=TOL[dtype], atol=TOL[dtype], msg=name
            )


def test_ties_at_the_threshold_activate():
    # d = ||h|| - prev_norm = 5 - 3 = 2 and threshold = 1 * (3 - 1) = 2: a tie.
    h = torch.tensor([[3.0, 4.0]])
    args = on_device(
        [
            torch.zeros_like(h),
            h,
            torch.ones(2),
            EPS,
            torch.tensor([False]),
            torch.tensor([3.0]),
            torch.tensor([3.0]),
            torch.tensor([1.0]),
            torch.tensor([1.0]),
            False,
            torch.empty(0, 2),
            torch.tensor([False]),
        ]
    )
    for impl in (add_rmsnorm_lac_reference, add_rmsnorm_lac_triton):
        assert impl(*args)[6].tolist() == [True]
        args[5] = torch.tensor([3.0001], device=DEVICE)
        assert impl(*args)[6].tolist() == [False]
        args[5] = torch.tensor([3.0], device=DEVICE)


def test_skipping_rows_keep_their_residual():
    args = make_case(16, 576, torch.float32)
    skip = args[4]
    for impl in (add_rmsnorm_lac_reference, add_rmsnorm_lac_triton):
        h = impl(*args)[1]
        assert torch.equal(h[skip], args[1][skip])
        torch.testing.assert_close(h[~skip], args[1][~skip] + args[0][~skip])


def test_reference_restates_the_formulas():
    torch.manual_seed(3)
    rows, layers, hidden = 5, 9, 64
    streams = torch.randn(rows, layers + 1, hidden).cumsum(dim=1)
    alpha = torch.tensor([0.0, 0.2, 0.5, 0.8, 1.0])
    state = LacState.start(streams[:, 0], alpha)
    bits = []
    weight = torch.ones(hidden)
    for layer in range(1, layers + 1):
        x = streams[:, layer] - streams[:, layer - 1]
        normed, h, act, _ = add_rmsnorm_lac(
            x,
            streams[:, layer - 1],
            weight,
            EPS,
            torch.zeros(rows, dtype=torch.bool),
            state,
            torch.empty(0, hidden),
            torch.zeros(rows, dtype=bool),
        )
        rms = (h.pow(2).mean(-1, keepdim=True) + EPS).sqrt()
        torch.testing.assert_close(normed, h / rms)
        bits.append(act)
    bits = torch.stack(bits, dim=1)
    for r in range(rows):
        norms = [float(v.double().norm()) for v in streams[r]]
        d = [b - a for a, b in zip(norms, norms[1:], strict=False)]
        expect = [
            d[i] >= (0 if i == 0 else float(alpha[r]) * (max(d[:i]) - min(d[:i])))
            for i in range(layers)
        ]
        assert bits[r].tolist() == expect
