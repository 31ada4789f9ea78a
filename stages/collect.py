"""collect stage: examples + generated - rejected -> validated, deduplicated, stratified splits.

    python -m stages.collect EXAMPLES_DIR GENERATED_DIR REJECTED_FILE OUT_DIR [--no-wandb]

The splits and stats.json are also logged to W&B as the ``dataset`` artifact ``skillcall-dataset``
(job type "collect"; offline unless WANDB_MODE says otherwise), which the finetune run declares as
its input. DVC stays the source of truth for the files. ``OUT_DIR/metrics.json`` (rows per split) is the stage's DVC metric; ``stats.json`` (counts per skill,
source, split) is a plain output. ``--no-wandb`` skips W&B (and the
``wandb:`` params section).
"""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from skillcall import tracking
from skillcall.dataset import CollectParams, collect, write_jsonl
from skillcall.examples import ExampleError, load_skills
from skillcall.params import ParamsError, load_params

METRICS_FILE = "metrics.json"  # the DVC metric of this stage: row counts only; stats.json (per skill ...) is not one


def row_counts(stats: dict) -> dict[str, int]:
    """The flat metric of the collect stage: rows per split.

    >>> row_counts({"splits": {"train": 80, "val": 10, "test": 10}, "per_skill": {}})
    {'train_rows': 80, 'val_rows': 10, 'test_rows': 10}
    """
    return {f"{split}_rows": n for split, n in stats["splits"].items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("examples", "generated", "rejected", "out"):
        ap.add_argument(name)
    ap.add_argument("--no-wandb", action="store_true", help="do not log the dataset artifact to W&B")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params("collect", CollectParams)
    skills = load_skills(args.examples)
    splits, stats = collect(args.examples, args.generated, args.rejected, skills, params)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        write_jsonl(out / f"{name}.jsonl", rows)
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    (out / METRICS_FILE).write_text(json.dumps(row_counts(stats), indent=2) + "\n")
    print(f"collect: read {stats['read']}, kept {stats['kept']}, splits {stats['splits']}")
    if args.no_wandb:
        return

    run = tracking.init_run("collect", asdict(params), load_params("wandb", tracking.WandbParams), stage="collect")
    tracking.log_dataset(run, out)
    run.summary.update({k: stats[k] for k in ("read", "kept", "duplicates", "rejected", "conflicts", "splits")})
    run.finish()


if __name__ == "__main__":
    try:
        main()
    except (ExampleError, ParamsError) as e:  # bad input: one paragraph naming file:line, no traceback
        sys.exit(f"collect: error: {e}")
