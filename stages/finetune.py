"""finetune stage: base model + LoRA (QLoRA with ``quantization: 4bit``) on the train split -> adapter folder.

    python -m stages.finetune BASE_DIR TRAIN VAL EXAMPLES_DIR ADAPTER_DIR METRICS_FILE LIVE_DIR [--resume]

``finetune.base_model: null`` trains BASE_DIR (the base stage's output); a folder or hub id there
overrides it. ``--resume`` continues from the last checkpoint in ``--checkpoints`` (git-ignored).
W&B: offline unless WANDB_MODE says otherwise; run name = DVC_EXP_NAME.
"""

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

from skillcall import tracking
from skillcall.examples import load_skills
from skillcall.params import load_params
from skillcall.train import FinetuneParams, save_adapter, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("base_dir", "train", "val", "examples", "adapter", "metrics", "live"):
        ap.add_argument(name)
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    ap.add_argument("--checkpoints", default="checkpoints/finetune", help="checkpoint folder (default: %(default)s)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params("finetune", FinetuneParams)
    params = replace(params, base_model=params.base_model or args.base_dir)
    skills = load_skills(args.examples)
    run = tracking.init_run("finetune", asdict(params), load_params("wandb", tracking.WandbParams), stage="finetune")
    live = tracking.live(args.live, resume=args.resume)

    result = train(params, args.train, args.val, skills, args.checkpoints, args.resume, run, live)
    save_adapter(args.adapter, result, skills, params)
    Path(args.metrics).write_text(json.dumps(result.metrics, indent=2) + "\n")

    columns = ["utterance", "gold", "prediction", "correct"]
    tracking.log_table(run, "val/samples", columns, [[s[c] for c in columns] for s in result.samples])
    metadata = {
        "base_model": params.base_model,
        "prompt_mode": params.prompt.mode,
        "skills": [s.signature for s in skills.values()],
        "dataset_sha256": result.data_hash["all"],
        "metrics": result.metrics,
    }
    tracking.log_artifact(run, "skillcall-adapter", "model", args.adapter, metadata)
    run.summary.update(result.metrics)
    run.finish()
    live.end()
    print(f"finetune: {json.dumps(result.metrics)}")


if __name__ == "__main__":
    main()
