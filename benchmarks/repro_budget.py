"""Time budget of the DVC pipeline: the fixed cost of a no-op ``dvc repro``, and the time of each stage.

    python -m benchmarks.repro_budget [--runs 5] [--repo .]     # no-op repro vs dvc status (needs a reproduced repo)
    python -m benchmarks.repro_budget --full [--repo .]         # per-stage wall time of `dvc repro --force`

No-op mode: ``dvc status`` (the floor: read dvc.yaml/params/lock, hash-check every dep and out) and
``dvc repro`` with nothing to do, each ``--runs`` times; prints min/median/max seconds.
``--full`` reruns every stage (it rewrites the outputs!) and timestamps the ``Running stage '...'`` lines
as dvc streams them: a stage's time runs from its line to the next stage's line (or dvc's exit), so it
includes dvc's own hashing/caching of that stage's outputs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def env() -> dict[str, str]:
    """This interpreter's bin dir first on PATH (stages run with this venv's python); W&B offline by default."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"),
    }


def timed(args: list[str], repo: Path) -> float:
    began = time.perf_counter()
    proc = subprocess.run(args, cwd=repo, env=env(), capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    if args[1] == "repro" and "Running stage" in proc.stdout + proc.stderr:
        sys.exit("dvc repro ran a stage: reproduce the pipeline first (`dvc repro`), then measure the no-op")
    return seconds


def noop(repo: Path, runs: int) -> None:
    rows = {" ".join(cmd): [timed(cmd, repo) for _ in range(runs)] for cmd in (["dvc", "status"], ["dvc", "repro"])}
    print(f"{'command':<12} {'runs':>4} {'min s':>7} {'median s':>9} {'max s':>7}")
    for name, times in rows.items():
        print(f"{name:<12} {runs:>4} {min(times):7.2f} {statistics.median(times):9.2f} {max(times):7.2f}")


def stage_times(lines, clock=time.perf_counter) -> tuple[list[tuple[str, float]], float]:
    """([(stage, seconds)], total seconds) from streamed ``dvc repro`` lines.

    >>> ticks = iter([0.0, 1.0, 2.0, 4.0, 5.0, 6.0])
    >>> stage_times(["Running stage 'a':", "> x", "Running stage 'b':", "done"], lambda: next(ticks))
    ([('a', 3.0), ('b', 2.0)], 6.0)
    """
    began = clock()
    marks: list[tuple[str, float]] = []
    for line in lines:
        now = clock()
        if line.startswith("Running stage '"):
            marks.append((line.split("'")[1], now))
    end = clock()
    bounds = [t for _, t in marks[1:]] + [end]
    return [(name, round(stop - start, 2)) for (name, start), stop in zip(marks, bounds, strict=True)], end - began


def full(repo: Path) -> None:
    proc = subprocess.Popen(
        ["dvc", "repro", "--force"], cwd=repo, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )

    def lines():
        for line in proc.stdout:
            print(line, end="", file=sys.stderr, flush=True)
            yield line

    stages, total = stage_times(lines())
    if proc.wait() != 0:
        sys.exit("dvc repro --force failed (its output is above)")
    print(f"{'stage':<20} {'seconds':>8}")
    for name, seconds in stages:
        print(f"{name:<20} {seconds:8.1f}")
    print(f"{'total (dvc repro)':<20} {total:8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=Path("."), help="reproduced repository root (default: .)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each no-op command (median reported)")
    ap.add_argument("--full", action="store_true", help="time each stage of `dvc repro --force` instead")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, repo {args.repo.resolve()}")
    if args.full:
        full(args.repo)
    else:
        noop(args.repo, args.runs)


if __name__ == "__main__":
    main()
