"""Run untrusted generated code: HumanEval's program = solution + tests.

Model output is untrusted. Each program runs in its own Python process
(isolated mode, no site packages of the user, empty environment), in a
throw-away working directory, with limits on wall time, CPU time, address
space, file size and core dumps, in its own process group so that a
timeout kills everything it started. Nothing runs inside the server or the
benchmark process.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from vllm_void.benchmarks.datasets import CodeProblem

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.S)


@dataclass(frozen=True)
class RunResult:
    status: str  # passed | failed | timeout | memory
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def extract_code(reply: str, problem: CodeProblem) -> str:
    """The solution in a reply: its code block that defines the entry point
    (else its first block, else the whole reply). A block holding only the
    function's body is appended to the problem's prompt; a whole function
    gets the prompt's imports in front."""
    blocks = _FENCE.findall(reply)
    defines = f"def {problem.entry_point}("
    code = next((b for b in blocks if defines in b), blocks[0] if blocks else reply)
    if defines not in code:
        return problem.prompt + code
    imports = [
        line
        for line in problem.prompt.splitlines()
        if line.startswith(("import ", "from ")) and line not in code
    ]
    return "\n".join(imports + [code])


def humaneval_program(solution: str, problem: CodeProblem) -> str:
    return f"{solution}\n\n{problem.test}\n\ncheck({problem.entry_point})\n"


def _limits(cpu_seconds: int, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_program(source: str, timeout: float = 10.0, memory_mb: int = 1024) -> RunResult:
    """Run ``source`` in a sandboxed child process; passed means exit status 0."""
    with tempfile.TemporaryDirectory(prefix="vllm-void-run-") as workdir:
        path = os.path.join(workdir, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", path],
            cwd=workdir,
            env={"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: _limits(int(timeout) + 1, memory_mb << 20),
        )
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return RunResult("timeout", f"killed after {timeout:g} s")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    tail = err.decode("utf-8", "replace")[-2000:]
    if proc.returncode == 0:
        return RunResult("passed")
    if proc.returncode == -signal.SIGXCPU:
        return RunResult("timeout", "CPU time limit")
    if "MemoryError" in tail:
        return RunResult("memory", tail.strip().splitlines()[-1])
    return RunResult("failed", tail.strip().splitlines()[-1] if tail.strip() else "")
