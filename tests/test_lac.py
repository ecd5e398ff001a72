"""kernels.lac against a direct, slow restatement of DESIGN.md section 1."""

import torch

from vllm_void.kernels.lac import LacState, add_rmsnorm_lac


def slow_bits(stream: torch.Tensor, alpha: float) -> list[int]:
    """stream: [L+1, D] = h_{-1}, h_0, .., h_{L-1} of one token."""
    norms = [float(torch.sqrt((row.double() ** 2).sum())) for row in stream]
    d = [norms[i + 1] - norms[i] for i in range(len(norms) - 1)]
    bits = []
    for layer, dl in enumerate(d):
        t = 0.0 if layer == 0 else alpha * (max(d[:layer]) - min(d[:layer]))
        bits.append(int(dl >= t))
    return bits


def run_lac(streams: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """streams: [T, L+1, D] -> bits [T, L] through LacState/add_rmsnorm_lac."""
    rows, dim = streams.shape[0], streams.shape[2]
    state = LacState.start(streams[:, 0], alphas)
    no_rows = torch.zeros(rows, dtype=torch.bool)
    bits = []
    for i in range(1, streams.shape[1]):
        delta = streams[:, i].float() - streams[:, i - 1].float()
        _, _, act, _ = add_rmsnorm_lac(
            delta.to(streams.dtype),
            streams[:, i - 1],
            torch.ones(dim, dtype=streams.dtype),
            1e-6,
            no_rows,
            state,
            streams.new_empty((0, dim)),
            no_rows,
        )
        bits.append(act)
    return torch.stack(bits, dim=1).int()


def test_matches_slow_restatement_with_per_row_alpha():
    torch.manual_seed(0)
    rows, layers, dim = 32, 12, 67
    # Norms that wander up and down, as residual streams do.
    scale = torch.cumsum(torch.rand(rows, layers + 1, 1) - 0.3, dim=1).abs() + 0.5
    streams = torch.randn(rows, layers + 1, dim) * scale
    alphas = torch.linspace(0, 1, rows)
    bits = run_lac(streams, alphas)
    for r in range(rows):
        assert bits[r].tolist() == slow_bits(streams[r], float(alphas[r]))
    assert 0 < bits.float().mean() < 1  # both outcomes occur


def test_layer_zero_threshold_is_zero_and_ties_activate():
    # Norms 1, 2, 3, 3.5: d = 1, 1, 0.5. Layer 1's threshold is alpha*(1-1) = 0,
    # layer 2's is alpha*(1-1)=0 too; d >= t everywhere (ties count as activated).
    stream = torch.tensor([[1.0, 0], [2.0, 0], [3.0, 0], [3.5, 0]])[None]
    assert run_lac(stream, torch.tensor([0.8])).tolist() == [[1, 1, 1]]
    # A layer that shrinks the norm is a void even at alpha 0.
    stream = torch.tensor([[1.0, 0], [2.0, 0], [1.5, 0]])[None]
    assert run_lac(stream, torch.tensor([0.0])).tolist() == [[1, 0]]


def test_half_precision_inputs_use_fp32_norms():
    torch.manual_seed(1)
    streams = torch.randn(4, 7, 576)
    alphas = torch.full((4,), 0.5)
    assert torch.equal(
        run_lac(streams.bfloat16().float(), alphas), run_lac(streams.bfloat16(), alphas)
    )
