"""What the comparison benchmarks share: time training steps, train a finetune variant, run one configuration in a
child process, print rows as markdown, and the ``main()`` that does all of it (:func:`compare_variants`).

>>> print_table([{"processes": 1, "s/step": 8.2}, {"processes": 2, "s/step": 9.0}])
| processes | s/step |
|---|---|
| 1 | 8.2 |
| 2 | 9.0 |
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def add_training_args(ap: argparse.ArgumentParser, steps: int) -> None:
    """The options of :func:`train_variant`: steps, left-out warm-up steps, base model, data."""
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--warmup", type=int, default=2, help="steps left out of seconds/step")
    ap.add_argument("--base", default=str(ROOT / "models/base"))
    ap.add_argument("--train", default=str(ROOT / "data/dataset/train.jsonl"))
    ap.add_argument("--val", default=str(ROOT / "data/dataset/val.jsonl"))
    ap.add_argument("--val-rows", type=int, default=64)


def require_base(args: argparse.Namespace) -> None:
    """Exit with a clear message when ``args.base`` (the base model folder) has not been made yet."""
    if not Path(args.base).is_dir():
        raise SystemExit(f"{args.base}: missing; run `dvc repro base` (or python -m stages.base models/base) first")


def train_variant(args: argparse.Namespace, **overrides: object) -> dict:
    """Train ``args.steps`` steps of params.yaml's finetune with ``overrides`` in this process; return seconds/step
    (the first ``args.warmup`` steps left out), tokens/s (non-padding, shared prefix counted once per step), peak
    RSS, final train and val loss, and the load average (above ~2.2 on 2 cores: other jobs shared the CPU)."""
    from skillcall.dataset import read_rows, write_jsonl
    from skillcall.examples import load_skills
    from skillcall.params import load_params
    from skillcall.train import FinetuneParams, train

    timer, step_times = step_timer()
    p = load_params("finetune", FinetuneParams, ROOT / "params.yaml")
    p = replace(p, **overrides, max_steps=args.steps, logging_steps=1, save_steps=10**6, sample_predictions=0)
    p = replace(p, warmup_steps=min(p.warmup_steps, args.steps // 4))
    with tempfile.TemporaryDirectory() as tmp:
        val = Path(tmp) / "val.jsonl"
        write_jsonl(val, read_rows(args.val)[: args.val_rows])
        skills = load_skills(ROOT / "examples")
        result = train(
            p, args.base, args.train, val, skills, Path(tmp) / "ckpt", print_=lambda *_: None, callbacks=(timer,)
        )
    timed = step_times[args.warmup :] or step_times
    m = result.metrics
    return {
        "steps": m["steps"],
        "seconds_per_step": round(sum(timed) / len(timed), 2),
        "tokens_per_s": round(m["tokens"] / m["train_seconds"], 1),
        "peak_rss_mb": m["peak_rss_mb"],
        "final_train_loss": round(m["train_loss"], 4),
        "val_loss": round(m["val_loss"], 4),
        "threads": m["threads"],
        "load_1min": round(os.getloadavg()[0], 1),
    }


def run_json(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd`` (a benchmark's ``--one`` child) and return the JSON object on its last stdout line."""
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=cwd).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_table(rows: list[dict]) -> None:
    """Rows (same keys) as a markdown table, columns in the first row's key order."""
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


def step_timer() -> tuple[object, list[float]]:
    """A transformers TrainerCallback that appends each optimizer step's seconds to the returned list."""
    import time

    from transformers import TrainerCallback

    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    return StepTimer(), times


def compare_variants(
    doc: str, script: str, names: Sequence[str], run_one: Callable[[argparse.Namespace, str], dict], steps: int
) -> None:
    """The ``main()`` of a side-by-side training benchmark: each of ``names`` runs in its own child process
    (``script --one NAME``, which prints ``run_one(args, NAME)`` as JSON), then their rows print as one table."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(ap, steps=steps)
    ap.add_argument("--one", choices=names, help=argparse.SUPPRESS)  # internal: run one variant here
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args, args.one)))
        return
    require_base(args)
    print_table([run_json([sys.executable, script, "--one", name, *sys.argv[1:]], ROOT) for name in names])
