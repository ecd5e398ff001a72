"""PNG figures of a grid result (the JSON written by ``vllm-void bench grid``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (task, metric, axis label); a metric is plotted when the grid measured it.
ACCURACY_METRICS = (
    ("humaneval", "pass_at_1", "HumanEval pass@1"),
    ("mmlu-loglik", "accuracy", "MMLU accuracy (log-likelihood)"),
    ("mmlu-gen", "accuracy", "MMLU accuracy (generation)"),
    ("fidelity", "token_agreement", "top-1 agreement with full model"),
    ("fidelity", "greedy_prefix", "greedy reply = full model's (share of 32 tokens)"),
    ("fidelity", "kl", "KL(full || setting), nats/token"),
    ("fidelity", "perplexity", "perplexity of MMLU text"),
)
STYLE = {
    "profile": ("tab:blue", "o"),
    "adaptive": ("tab:green", "s"),
    "shortgpt": ("tab:red", "^"),
    "mask": ("tab:purple", "D"),
    "custom": ("tab:gray", "x"),
}


def _speedups(grid: dict[str, Any], batch: int, baseline: str) -> dict[str, float]:
    key = f"decode_speedup_vs_{baseline}"
    return {
        r["setting"]: r[key]
        for r in grid.get("speed", {}).get("ratios", [])
        if r["batch"] == batch and key in r
    }


def _layer_share(entry: dict[str, Any], family: str) -> float | None:
    """Decode layers a setting used; a mask setting runs every layer, so it
    is placed at the share LAC kept (recorded since the mask runs LAC)."""
    used = entry["layers_used"]
    if family == "mask":
        activated = (used.get("activated") or {}).get("decode")
        return used["decode"] if activated is None else activated
    return used["decode"]


def tradeoff(grid: dict[str, Any], path: Path, axis: str, batch: int, baseline: str) -> Path:
    """One panel per measured metric: metric against decode speed-up or layer usage."""
    tasks = grid["accuracy"].get("tasks", {})
    panels = [m for m in ACCURACY_METRICS if m[0] in tasks]
    speedups = _speedups(grid, batch, baseline) if axis == "speedup" else {}
    settings = {s["name"]: s for s in grid["settings"]}
    cols = min(3, max(1, len(panels)))
    rows = -(-len(panels) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax, (task, metric, label) in zip(axes.flat, panels, strict=False):
        families: dict[str, list[tuple[float, float, str]]] = {}
        for name, entry in tasks[task].items():
            # Layer usage is the task's own: adaptive runs its first decode
            # tokens in full, so short replies use more layers than long ones.
            if name not in settings or metric not in entry:
                continue
            family = settings[name]["family"]
            x = speedups.get(name) if axis == "speedup" else _layer_share(entry, family)
            if x is None:
                continue
            point = (x, entry[metric], name)
            if family == "off" and axis == "speedup":
                # Stock vLLM's outputs are off's (tests/test_void_engine.py
                # checks them equal), at speed-up 1 by definition.
                ax.scatter(
                    1.0, entry[metric], marker="P", s=160, color="gray", zorder=5,
                    label="stock vLLM (same output as off)",
                )  # fmt: skip
            if family == "off":
                ax.scatter(
                    *point[:2], marker="*", s=220, color="black", zorder=5,
                    label="off (full model)",
                )  # fmt: skip
            else:
                families.setdefault(family, []).append(point)
        for family, points in sorted(families.items()):
            color, marker = STYLE.get(family, STYLE["custom"])
            points.sort()
            ax.plot(
                [p[0] for p in points], [p[1] for p in points],
                marker=marker, color=color, label=family,
            )  # fmt: skip
        if axis == "speedup":
            ax.axvline(1.0, color="gray", lw=0.8, ls="--")
            ax.set_xlabel(f"decode speed-up vs {baseline} (batch {batch})")
        else:
            ax.set_xlabel("decode layers used (share; mask: share activated)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(f"{grid['model']}: accuracy and fidelity against "
                 + ("decode speed-up" if axis == "speedup" else "layer usage"),
                 fontsize=10 if cols == 1 else 12)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def layer_usage(usage: dict[str, Any], model: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for phase, marker, label in (("prefill", "o", "prefill (PP)"), ("decode", "s", "decode (RG)")):
        ax.plot(usage["alpha"], usage[phase], marker=marker, label=label)
    ax.set_xlabel("LAC alpha")
    ax.set_ylabel("share of layers activated")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{model}: layer usage per phase")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def heatmap(data: dict[str, Any], model: str, path: Path) -> Path:
    """Activated (dark) and void (light) layers per token, PP and RG side by side."""
    import numpy as np

    panels = [(p, np.asarray(data["bits"][p])) for p in ("prefill", "decode") if data["bits"][p]]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(6 * len(panels), 7), squeeze=False,
        gridspec_kw={"width_ratios": [len(b) for _, b in panels]},
    )  # fmt: skip
    for ax, (phase, bits) in zip(axes.flat, panels, strict=True):
        ax.imshow(bits.T, aspect="auto", cmap="Greys", origin="lower", vmin=0, vmax=1)
        tokens = data["tokens"][phase]
        step = max(1, len(tokens) // 40)
        ax.set_xticks(range(0, len(tokens), step))
        ax.set_xticklabels([repr(t)[1:-1][:8] for t in tokens[::step]], rotation=90, fontsize=6)
        ax.set_ylabel("layer")
        ax.set_title(f"{'PP (prompt)' if phase == 'prefill' else 'RG (response)'}")
    fig.suptitle(f"{model}: LAC activations at alpha {data['alpha']} (dark = activated)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_grid(grid: dict[str, Any], out_dir: Path) -> list[Path]:
    """Every figure the grid's data allows; returns the PNG paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    speed = grid.get("speed", {})
    if speed.get("ratios"):
        batch = grid["plot_batch"]
        paths.append(
            tradeoff(grid, out_dir / "tradeoff_speedup.png", "speedup", batch, grid["baseline"])
        )
    paths.append(tradeoff(grid, out_dir / "tradeoff_layers.png", "layers", 0, ""))
    extras = grid["accuracy"]
    if extras.get("layer_usage"):
        paths.append(layer_usage(extras["layer_usage"], grid["model"], out_dir / "layer_usage.png"))
    if extras.get("heatmap"):
        paths.append(heatmap(extras["heatmap"], grid["model"], out_dir / "void_heatmap.png"))
    return paths
