"""eval stage: the fine-tuned model and the base model (baseline) on the test split -> metrics, predictions, confusion.

    python -m stages.eval --adapter ADAPTER_DIR --base BASE_DIR --dataset DATASET_DIR --out OUT_DIR   (dvc.yaml)
    python -m stages.eval --test-file otto_test.json --out /tmp/otto_eval                               (any file)

``--dataset`` reads ``<split>.jsonl`` (``eval.split``); ``--test-file`` reads a JSON array or JSONL with
``user``/``answer`` or ``input``/``output`` (skipped records, e.g. unknown skills, are reported in
details.json under ``test_file``). Hyperparameters: the ``eval:`` section of params.yaml.

Decoding: ``eval.grammar`` (default true) constrains generation to the skills' grammar; the test set is scored in
both settings (``constrained_ast_accuracy`` / ``unconstrained_ast_accuracy``; the bare keys = the default setting),
the base model too (``baseline``, ``baseline_constrained``); ``--holdout`` in the default setting. metrics.json holds
flat headline numbers (``holdout_ast_accuracy`` ...); details.json every number of every set.

What is evaluated (recorded in details.json under ``evaluated``) can be overridden, by params.yaml
(``eval.model``, ``eval.adapter``, ``eval.prompt``, ``eval.prompt_file``) or by the flags below, which win:

    python -m stages.eval --dataset data/dataset --out /tmp/e --model models/base          # a model alone
    python -m stages.eval --dataset data/dataset --out /tmp/e --adapter /tmp/other_adapter # another adapter
    python -m stages.eval --dataset data/dataset --out /tmp/e --prompt-file prompts/mistral.txt

W&B: offline unless WANDB_MODE says otherwise; run name = DVC_EXP_NAME; job type "eval"; the run uses
the adapter's ``model`` artifact (the version the finetune run logged from the same files).
"""

import argparse
import json
from dataclasses import asdict

from skillcall import plots, tracking
from skillcall.evaluate import (
    EvalParams,
    evaluate_target,
    log_wandb,
    read_holdout,
    read_split,
    read_test_file,
    resolve_target,
    summary,
    with_flags,
    write_outputs,
)
from skillcall.models import adapter_metadata
from skillcall.params import load_params


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", default="models/adapter", help="adapter folder of the finetune stage (%(default)s)")
    ap.add_argument("--base", help="base model folder or hub id (default: the one the adapter records)")
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="dataset folder holding <eval.split>.jsonl")
    source.add_argument("--test-file", help="JSON/JSONL test file (user/answer or input/output)")
    ap.add_argument("--holdout", help="folder of *.jsonl utterances scored under 'holdout' (data/holdout)")
    ap.add_argument("--out", required=True, help="output folder: metrics.json, predictions, confusion.json")
    ap.add_argument("--model", help="evaluate this model folder or hub id alone (eval.model), e.g. an export")
    ap.add_argument("--prompt", help='raw prompt text with {system} {user} {answer}, or "chat" (eval.prompt)')
    ap.add_argument("--prompt-file", help="raw prompt file, e.g. prompts/mistral.txt (eval.prompt_file)")
    ap.add_argument(
        "--allow-prompt-mismatch", action="store_true", help="accept a prompt in another chat format than the model's"
    )
    ap.add_argument("--other-bias", type=float, help="other()'s first-token logit offset (eval.other_bias)")
    ap.add_argument("--copy-bias", type=float, help="the utterance's words' offset in copied values (eval.copy_bias)")
    return ap.parse_args(argv)


FLAGS = ("model", "prompt", "prompt_file", "allow_prompt_mismatch", "other_bias", "copy_bias")  # params they override


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    flags = {k: getattr(args, k) for k in FLAGS}
    params = with_flags(load_params("eval", EvalParams), **flags)
    target = resolve_target(args.adapter, args.base, params)  # a prompt that cannot work fails here
    report = None
    if args.test_file:
        rows, report = read_test_file(args.test_file, target.skills)
        print(f"eval: {args.test_file}: {len(rows)} rows, {report['skipped']} skipped {report['unknown_skills']}")
    else:
        rows = read_split(args.dataset, params.split)
    sets = {"test": rows} | ({"holdout": read_holdout(args.holdout, target.skills)} if args.holdout else {})
    config = {
        "eval": asdict(params),
        "evaluated": target.record(),
        "test": args.test_file or f"{args.dataset}:{params.split}",
    }
    run = tracking.init_run("eval", config, load_params("wandb", tracking.WandbParams), stage="eval")
    if target.adapter:
        tracking.use_artifact(run, tracking.MODEL_ARTIFACT, "model", target.adapter, adapter_metadata(target.adapter))

    result = evaluate_target(target, sets, params)
    if report is not None:
        result.details["test_file"] = report
    write_outputs(args.out, result)
    log_wandb(run, result)
    plots.log_images(run, plots.write_eval_plots(args.out, result.details, headline=next(iter(sets))), "eval")
    run.finish()
    print(f"{summary(result)}\neval: {result.seconds:.0f} s -> {args.out}")
    if report and report["skipped"]:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
