"""`make bench` keeps working as the code under it changes: one short run of every figure
(BENCH_QUICK), checked for its report. The figures themselves are for people to read in
docs/benchmarks.md; nothing here times anything or judges a target."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_measures_every_figure_and_writes_its_table(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(BENCH_QUICK="1", BENCH_OUTPUT=str(tmp_path / "benchmarks.md"))
    run = subprocess.run(
        [sys.executable, "bench/run.py"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    table = (tmp_path / "benchmarks.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    figures = [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]
    for expected in (
        "Time to result, 1 at once, no callbacks", "Time to result, 4 at once, callbacks",
        "Status poll, requests per CPU-second", "Status poll, database queries",
        "History page at 1,000 edits, time", "Handling a 3840x2160 result",
        "Page weight, history of 6 edits", "JavaScript, history",
    ):  # fmt: skip
        assert any(figure.startswith(expected) for figure in figures), (expected, figures)
    for row in rows[1:]:
        cells = row.strip("|").split(" | ")
        assert len(cells) == 6 and cells[5].strip() in ("met", "**missed**"), row


def test_a_failing_step_fails_the_benchmark(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(BENCH_QUICK="1", BENCH_ONLY="no_such_figure", BENCH_OUTPUT=str(tmp_path / "b.md"))
    run = subprocess.run(
        [sys.executable, "bench/run.py"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode != 0 and "no_such_figure" in run.stderr
    assert not (tmp_path / "b.md").exists()
