"""eval stage: the fine-tuned model and the base model (baseline) on the test split -> metrics, predictions, confusion.

    python -m stages.eval --adapter ADAPTER_DIR --base BASE_DIR --dataset DATASET_DIR --out OUT_DIR   (dvc.yaml)
    python -m stages.eval --test-file otto_test.json --out /tmp/otto_eval                               (any file)

``--dataset`` reads ``<split>.jsonl`` (``eval.split``); ``--test-file`` reads a JSON array or JSONL with
``user``/``answer`` or ``input``/``output`` (skipped records, e.g. unknown skills, are reported in
metrics.json under ``test_file``). Hyperparameters: the ``eval:`` section of params.yaml.
W&B: offline unless WANDB_MODE says otherwise; run name = DVC_EXP_NAME; job type "eval".
"""

import argparse
import json
from dataclasses import asdict

from skillcall import tracking
from skillcall.evaluate import (
    EvalParams,
    adapter_skills,
    log_wandb,
    read_split,
    read_test_file,
    run_eval,
    summary,
    write_outputs,
)
from skillcall.params import load_params


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", default="models/adapter", help="adapter folder of the finetune stage (%(default)s)")
    ap.add_argument("--base", help="base model folder or hub id (default: the one the adapter records)")
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="dataset folder holding <eval.split>.jsonl")
    source.add_argument("--test-file", help="JSON/JSONL test file (user/answer or input/output)")
    ap.add_argument("--out", required=True, help="output folder: metrics.json, predictions, confusion.json")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params("eval", EvalParams)
    report = None
    if args.test_file:
        rows, report = read_test_file(args.test_file, adapter_skills(args.adapter))
        print(f"eval: {args.test_file}: {len(rows)} rows, {report['skipped']} skipped {report['unknown_skills']}")
    else:
        rows = read_split(args.dataset, params.split)
    config = {
        "eval": asdict(params),
        "adapter": args.adapter,
        "test": args.test_file or f"{args.dataset}:{params.split}",
    }
    run = tracking.init_run("eval", config, load_params("wandb", tracking.WandbParams), stage="eval")

    result = run_eval(args.adapter, args.base, rows, params)
    if report is not None:
        result.metrics["test_file"] = report
    write_outputs(args.out, result)
    log_wandb(run, result)
    run.finish()
    print(f"eval: {summary(result.metrics)}; {result.seconds:.0f} s -> {args.out}")
    if report and report["skipped"]:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
