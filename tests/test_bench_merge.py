"""Joining accuracy runs made apart, and drawing the plots of the joined grid."""

from __future__ import annotations

import pytest

from vllm_void.benchmarks.cli import merge_results
from vllm_void.benchmarks.plots import plot_grid
from vllm_void.benchmarks.settings import parse_setting


def _part(task, names, metric, values, used):
    settings = [parse_setting(n).to_dict() for n in names]
    entries = {
        n: {metric: v, "layers_used": {"prefill": 1.0, "decode": u}}
        for n, v, u in zip(names, values, used, strict=True)
    }
    subset = {task: {"limit": None, "stride": 1}}
    return {"model": "m", "settings": settings, "tasks": {task: entries}, "subset": subset}


def test_merge_joins_tasks_and_settings_and_plots(tmp_path):
    loglik = _part("mmlu-loglik", ["off", "profile:0.25"], "accuracy", [0.3, 0.25], [1.0, 0.75])
    code = _part("humaneval", ["off", "shortgpt:0.25"], "pass_at_1", [0.5, 0.0], [1.0, 0.75])
    speed = {
        "ratios": [
            {"setting": "off", "batch": 1, "decode_speedup_vs_stock-eager": 1.0},
            {"setting": "profile:0.25", "batch": 1, "decode_speedup_vs_stock-eager": 1.2},
            {"setting": "shortgpt:0.25", "batch": 1, "decode_speedup_vs_stock-eager": 1.2},
        ]
    }
    grid = merge_results([loglik, code], speed, "stock-eager", 1)
    assert {s["name"] for s in grid["settings"]} == {"off", "profile:0.25", "shortgpt:0.25"}
    assert set(grid["accuracy"]["tasks"]) == {"mmlu-loglik", "humaneval"}
    paths = plot_grid(grid, tmp_path)
    assert [p.name for p in paths] == ["tradeoff_speedup.png", "tradeoff_layers.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_merge_refuses_parts_of_different_models():
    a = _part("humaneval", ["off"], "pass_at_1", [0.5], [1.0])
    b = dict(a, model="other")
    with pytest.raises(ValueError, match="different models"):
        merge_results([a, b], None, "stock-eager", 1)


def test_merge_refuses_a_task_measured_on_different_subsets():
    a = _part("humaneval", ["off"], "pass_at_1", [0.5], [1.0])
    b = _part("humaneval", ["profile:0.25"], "pass_at_1", [0.4], [0.75])
    b["subset"]["humaneval"] = {"limit": None, "stride": 4}
    with pytest.raises(ValueError, match="different subsets"):
        merge_results([a, b], None, "stock-eager", 1)
