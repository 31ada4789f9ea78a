"""Random batches vs length-grouped batches (``finetune.length_group``): padding, seconds per step, tokens/s.

    python benchmarks/length_group.py [--steps 20] [--groups 1 8] [--base models/base]

Each setting trains in its own process with the finetune params of params.yaml, only ``max_steps`` and
``length_group`` changed; same data and seed. The padding share is computed for the whole epoch's batches in the
order the trainer draws them (suffix tokens after the shared system prompt; padding / padded tokens). Seconds/step
leave out the first ``--warmup`` steps; tokens/s counts non-padding tokens, so it compares the work done whichever
rows the first steps happened to draw.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import add_training_args, print_table, require_base, run_json, train_variant  # noqa: E402


def padding_share(args: argparse.Namespace, group: int) -> float:
    """Share of the padded suffix tokens that are padding, over an epoch of ``length_group=group`` batches."""
    from transformers import AutoTokenizer

    from skillcall.dataset import read_rows
    from skillcall.examples import load_skills
    from skillcall.params import load_params
    from skillcall.prompting import Prompter
    from skillcall.train import FinetuneParams, length_grouped_order, shared_prefix_length, tokenize_rows

    p = load_params("finetune", FinetuneParams, ROOT / "params.yaml")
    prompter = Prompter.build(p.prompt, load_skills(ROOT / "examples"), AutoTokenizer.from_pretrained(args.base))
    examples = tokenize_rows(read_rows(args.train), prompter)
    n = shared_prefix_length(examples) if p.share_prefix else 0
    lengths = [len(e["input_ids"]) - n for e in examples]
    order = length_grouped_order(lengths, p.batch_size, group, p.seed)
    batches = [[lengths[i] for i in order[k : k + p.batch_size]] for k in range(0, len(order), p.batch_size)]
    padded = sum(max(b) * len(b) for b in batches)
    return round(1 - sum(lengths) / padded, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(ap, steps=20)
    ap.add_argument("--groups", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one setting here
    args = ap.parse_args()
    if args.one is not None:
        row = {"length_group": args.one, "padding_share": padding_share(args, args.one)}
        print(json.dumps({**row, **train_variant(args, length_group=args.one)}))
        return
    require_base(args)
    rows = [run_json([sys.executable, __file__, "--one", str(g), *sys.argv[1:]], ROOT) for g in args.groups]
    print_table(rows)


if __name__ == "__main__":
    main()
