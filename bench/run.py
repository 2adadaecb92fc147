"""`make bench`: the app measured against its limits, each figure beside a baseline measured in
the same run, written to docs/benchmarks.md (BENCH_OUTPUT names another file).

BENCH_QUICK=1 measures every figure once and small (the test suite does); BENCH_RUNS sets how
many runs each median is taken over; BENCH_ONLY=latency,polling runs only those figures.
Any step that fails stops the bench with a non-zero exit and its traceback."""

import importlib
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="imageedits-bench-")
os.environ.pop("DATABASE_URL", None)
os.environ["TASKS_BACKEND"] = "django_tasks_db.DatabaseBackend"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imageedits.settings")
# The figures measured in this process run as production does (DEBUG off: no query log, no
# template debug information), over plain HTTP on localhost.
os.environ.update(DEBUG="0", SECRET_KEY="bench-" * 10, SECURE_SSL_REDIRECT="0", SECURE_COOKIES="0")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from bench.common import QUICK, RUNS, Row  # noqa: E402

# results first: it forks, which wants no other threads alive.
FIGURES = ["results", "latency", "polling", "history", "uploads", "pages"]


def main() -> None:
    logging.getLogger("imageedits.simulator").setLevel(logging.WARNING)  # one line a request
    only = [name for name in os.environ.get("BENCH_ONLY", "").split(",") if name]
    # This process's own database and static files, for the figures measured in it.
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    rows = []
    for name in only or FIGURES:
        started = time.monotonic()
        print(f"measuring {name}...", flush=True)
        module = importlib.import_module(f"bench.{name}")
        for row in module.measure():
            rows.append(row)
            ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
            verdict = "met" if row.met else "MISSED"
            print(f"  {row.figure}: {row.measured} vs {row.baseline} {ratio} "
                  f"(target {row.target}: {verdict})", flush=True)  # fmt: skip
        print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    output = Path(os.environ.get("BENCH_OUTPUT", ROOT / "docs" / "benchmarks.md"))
    output.parent.mkdir(parents=True, exist_ok=True)
    if only and output.exists():  # measured again: these rows replace their own, the rest stay
        rows = merged(output.read_text(), rows)
    output.write_text(report(rows))
    met = sum(row.met for row in rows)
    print(f"{met} of {len(rows)} targets met; written to {output}")


def merged(table: str, rows: list[Row]) -> list[Row]:
    """The rows of an earlier report, with those measured again in their place."""
    again = {row.figure: row for row in rows}
    earlier = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) != 6 or cells[0] == "Figure" or cells[0].startswith("---"):
            continue
        figure, measured, baseline, ratio, target, verdict = cells
        ratio_value = float(ratio.removesuffix("x")) if ratio.endswith("x") else None
        earlier.append(Row(figure, measured, baseline, ratio_value, target, verdict == "met"))
    names = {row.figure for row in earlier}
    return [again.pop(row.figure, row) for row in earlier] + [
        row for row in rows if row.figure not in names
    ]


def report(rows) -> str:
    lines = [
        "| Figure | Measured | Baseline (same run) | Ratio | Target | |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "–"
        verdict = "met" if row.met else "**missed**"
        lines.append(
            f"| {row.figure} | {row.measured} | {row.baseline} | {ratio} | {row.target} "
            f"| {verdict} |"
        )
    machine = f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.machine()}"
    runs = "BENCH_QUICK (one small run each)" if QUICK else f"medians of {RUNS} runs"
    return TEMPLATE.format(table="\n".join(lines), machine=machine, runs=runs,
                           date=time.strftime("%Y-%m-%d"))  # fmt: skip


TEMPLATE = (ROOT / "bench" / "benchmarks.md.in").read_text()

if __name__ == "__main__":
    main()
