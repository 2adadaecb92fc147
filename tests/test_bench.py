"""`make bench` keeps working as the code under it changes: one quick run, checked for its
report. (The figures themselves are for people to read; nothing here times anything.)"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_runs_and_reports_its_ratios():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["BENCH_EDITS"] = "1"
    run = subprocess.run(
        [sys.executable, "bench/pipeline.py"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "full pipeline" in run.stdout and "x baseline" in run.stdout
    assert "finish(): decode, store, thumb" in run.stdout
