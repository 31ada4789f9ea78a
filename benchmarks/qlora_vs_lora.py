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
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import add_training_args, print_table, require_base, run_json, train_variant  # noqa: E402

CONFIGS = ("none", "4bit")


def run_one(args: argparse.Namespace) -> dict:
    """Train ``args.steps`` steps with ``args.one`` quantization in this process; return the measurements."""
    return {"quantization": args.one, **train_variant(args, quantization=args.one)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(ap, steps=20)
    ap.add_argument("--one", choices=CONFIGS, help=argparse.SUPPRESS)  # internal: run one config here
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args)))
        return
    require_base(args)
    rows = []
    for quantization in CONFIGS:
        cmd = [sys.executable, __file__, "--one", quantization, *sys.argv[1:]]
        rows.append(run_json(cmd, ROOT))
    print_table(rows)


if __name__ == "__main__":
    main()
