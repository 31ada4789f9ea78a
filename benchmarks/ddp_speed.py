"""Data-parallel fine-tuning: seconds per optimizer step with 1 process vs N torchrun ranks, same global batch.

    python benchmarks/ddp_speed.py [--processes 1 2] [--steps 8] [--batch 16] [--base models/base]

Each configuration runs in its own process group with the finetune params of params.yaml, except ``max_steps``,
``processes``, ``threads: 0`` (the cores shared out: 2 threads for 1 process, 1 each for 2 on this CPU) and the
per-process ``batch_size`` = ``--batch`` / processes, so every optimizer step sees the same ``--batch`` examples.
N > 1 runs ``torchrun --standalone --nproc-per-node N`` (gloo DDP on a CPU). Rank 0 times each step (a DDP step
ends with the gradient all-reduce, so all ranks finish it together); the first ``--warmup`` steps are left out.
``load_1min`` is the load average at the end: above ~2 on this 2-core machine, other processes shared the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import print_table, require_base, run_json, step_timer  # noqa: E402


def run_one(args: argparse.Namespace) -> dict | None:
    """Train ``args.steps`` steps as one rank of ``args.one`` processes; rank 0 returns the measurements."""
    from skillcall import distributed
    from skillcall.dataset import read_rows, write_jsonl
    from skillcall.examples import load_skills
    from skillcall.params import load_params
    from skillcall.train import FinetuneParams, train

    timer, step_times = step_timer()

    n = args.one
    if args.batch % n:
        raise SystemExit(f"--batch {args.batch} is not a multiple of {n} processes")
    p = load_params("finetune", FinetuneParams, ROOT / "params.yaml")
    p = replace(p, processes=n, threads=0, batch_size=args.batch // n, grad_accum=1, max_steps=args.steps)
    p = replace(p, logging_steps=1, save_steps=10**6, sample_predictions=0, warmup_steps=min(p.warmup_steps, 2))
    with tempfile.TemporaryDirectory() as tmp:
        val = Path(tmp) / "val.jsonl"
        write_jsonl(val, read_rows(args.val)[: args.val_rows])
        skills = load_skills(ROOT / "examples")
        ckpt = Path(tmp) / "ckpt"  # each rank its own temp folder: rank 0 alone uses it (save_steps is never hit)
        result = train(p, args.base, args.train, val, skills, ckpt, print_=lambda *_: None, callbacks=(timer,))
    if distributed.rank() != 0:
        return None
    timed = step_times[args.warmup :] or step_times
    m = result.metrics
    return {
        "processes": m["processes"],
        "threads_each": m["threads"],
        "batch_per_process": p.batch_size,
        "global_batch": m["examples_per_step"],
        "steps": m["steps"],
        "seconds_per_step": round(sum(timed) / len(timed), 2),
        "fastest_step": round(min(timed), 2),
        "final_train_loss": round(m["train_loss"], 4),
        "peak_rss_mb_rank0": m["peak_rss_mb"],
        "load_1min": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2, help="steps left out of seconds/step")
    ap.add_argument("--batch", type=int, default=16, help="global batch (examples per optimizer step)")
    ap.add_argument("--base", default=str(ROOT / "models/base"))
    ap.add_argument("--train", default=str(ROOT / "data/dataset/train.jsonl"))
    ap.add_argument("--val", default=str(ROOT / "data/dataset/val.jsonl"))
    ap.add_argument("--val-rows", type=int, default=32)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: be one rank of this many processes
    args = ap.parse_args()
    if args.one:
        row = run_one(args)
        if row is not None:
            print(json.dumps(row), flush=True)
        return
    require_base(args)
    rows = []
    for n in args.processes:
        script = [__file__, "--one", str(n), *sys.argv[1:]]
        torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n)]
        cmd = [sys.executable, *script] if n == 1 else [sys.executable, *torchrun, *script]
        rows.append(run_json(cmd, ROOT))
    print_table(rows)


if __name__ == "__main__":
    main()
