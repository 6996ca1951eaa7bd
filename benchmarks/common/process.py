"""Child processes and this process's memory figures, as the benchmarks measure peaks: a configuration runs alone in
a fresh interpreter (`python -m benchmarks.<module> ...` from the repository root) and prints one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.paths import ROOT


def proc_status_kib(field: str) -> int | None:
    """A kB figure of /proc/self/status (VmRSS: resident now, VmHWM: its peak); None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def json_child(module: str, args: list[str], timeout: float) -> dict:
    """Run `python -m <module> <args>` from the repository root; its last stdout line parsed as JSON. Raises
    subprocess.SubprocessError (failed, timed out) or ValueError / IndexError (no JSON line)."""
    cmd = [sys.executable, "-m", module, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])
