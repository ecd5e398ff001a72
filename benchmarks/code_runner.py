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


# Runs first in the child, before the program: the resource limits, then
# the calls a test program has no business making (deleting or moving files,
# signals, new processes, leaving the process group) replaced by an error.
# Not a security boundary against a determined attacker, but it stops what a
# confused model writes by accident, as HumanEval's own harness does.
_LAUNCHER = """
import os, resource, runpy, shutil, subprocess, sys
cpu, memory, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
def refused(*args, **kwargs):
    raise PermissionError("not allowed in the HumanEval sandbox")
for module, names in (
    (os, "system remove unlink rmdir removedirs rename renames replace kill killpg fork "
         "forkpty setsid setpgid putenv chmod chown truncate execv execve execvp spawnv"),
    (shutil, "rmtree move chown copyfile copytree"),
    (subprocess, "Popen run call check_call check_output"),
):
    for name in names.split():
        if hasattr(module, name):
            setattr(module, name, refused)
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
"""


def run_program(source: str, timeout: float = 10.0, memory_mb: int = 1024) -> RunResult:
    """Run ``source`` in a sandboxed child process; passed means exit status 0.

    The limits are set by the child itself (a launcher run before the
    program), not by a ``preexec_fn``: this is called from worker threads
    of a process full of vLLM's threads, where forking into Python code is
    unsafe.
    """
    with tempfile.TemporaryDirectory(prefix="vllm-void-run-", ignore_cleanup_errors=True) as work:
        path = os.path.join(work, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        limits = [str(int(timeout) + 1), str(memory_mb << 20)]
        # stderr goes to a file in the work dir: RLIMIT_FSIZE bounds it, a pipe would not be.
        with open(os.path.join(work, "stderr.txt"), "w+b") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", _LAUNCHER, *limits, path],
                cwd=work,
                env={"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                # Whatever the program started in its group goes with it.
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
            err.seek(max(0, os.fstat(err.fileno()).st_size - 2000))
            tail = err.read().decode("utf-8", "replace")
    if timed_out:
        return RunResult("timeout", f"killed after {timeout:g} s")
    last = tail.strip().splitlines()[-1] if tail.strip() else ""
    if proc.returncode == 0:
        return RunResult("passed")
    if proc.returncode == -signal.SIGXCPU:
        return RunResult("timeout", "CPU time limit")
    if "MemoryError" in tail:
        return RunResult("memory", last)
    return RunResult("failed", last)
