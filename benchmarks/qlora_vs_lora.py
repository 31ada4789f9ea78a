"""Plain LoRA vs 4-bit QLoRA on the real base model: seconds per step, peak memory, final loss.

    python benchmarks/qlora_vs_lora.py [--steps 20] [--base models/base] [--train data/dataset/train.jsonl]

Each configuration trains in its own process (so peak RSS is its own) with the finetune params
of params.yaml, except ``max_steps`` and ``quantization``; same data, same seed. The first
``--warmup`` steps are left out of seconds/step (allocator and thread-pool warm-up). ``load_1min``
is the load average at the end: on a shared 2-core machine, values above ~2 mean the timing is noisy.
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

from benchmarks.harness import print_table, run_json, step_timer  # noqa: E402

CONFIGS = ("none", "4bit")


def run_one(args: argparse.Namespace) -> dict:
    """Train ``args.steps`` steps with ``args.one`` quantization in this process; return the measurements."""
    from skillcall.dataset import read_rows, write_jsonl
    from skillcall.examples import load_skills
    from skillcall.params import load_params
    from skillcall.train import FinetuneParams, train

    timer, step_times = step_timer()

    p = load_params("finetune", FinetuneParams, ROOT / "params.yaml")
    p = replace(p, quantization=args.one, max_steps=args.steps, logging_steps=1)
    p = replace(p, save_steps=10**6, sample_predictions=0, warmup_steps=min(p.warmup_steps, args.steps // 4))
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
        "quantization": args.one,
        "steps": m["steps"],
        "seconds_per_step": round(sum(timed) / len(timed), 2),
        "peak_rss_mb": m["peak_rss_mb"],
        "final_train_loss": round(m["train_loss"], 4),
        "val_loss": round(m["val_loss"], 4),
        "threads": m["threads"],
        "load_1min": round(os.getloadavg()[0], 1),  # > ~2.2 here means other processes shared the 2 cores
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2, help="steps left out of seconds/step")
    ap.add_argument("--base", default=str(ROOT / "models/base"))
    ap.add_argument("--train", default=str(ROOT / "data/dataset/train.jsonl"))
    ap.add_argument("--val", default=str(ROOT / "data/dataset/val.jsonl"))
    ap.add_argument("--val-rows", type=int, default=64)
    ap.add_argument("--one", choices=CONFIGS, help=argparse.SUPPRESS)  # internal: run one config here
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args)))
        return
    if not Path(args.base).is_dir():
        sys.exit(f"{args.base}: missing; run `dvc repro base` (or python -m stages.base models/base) first")
    rows = []
    for quantization in CONFIGS:
        cmd = [sys.executable, __file__, "--one", quantization, *sys.argv[1:]]
        rows.append(run_json(cmd, ROOT))
    print_table(rows)


if __name__ == "__main__":
    main()
