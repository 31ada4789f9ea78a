"""finetune stage: base model + LoRA (QLoRA with ``quantization: 4bit``) on the train split -> adapter folder.

    python -m stages.finetune BASE_DIR TRAIN VAL EXAMPLES_DIR ADAPTER_DIR METRICS_FILE LIVE_DIR [--resume]

BASE_DIR is the base stage's output (``base.model`` in params.yaml picks the model). ``--resume`` continues from the last checkpoint in ``--checkpoints`` (git-ignored).
W&B: offline unless WANDB_MODE says otherwise; run name = DVC_EXP_NAME. The run uses the dataset
artifact of TRAIN's folder (when it is the collect stage's output) and logs the adapter as a ``model`` artifact.

``finetune.processes: N`` > 1: the stage re-runs itself under torchrun as N data-parallel ranks on this machine
(:mod:`skillcall.distributed`); started by a launcher itself (multi-GPU, multi-node), it is one rank of that group:

    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \
        -m stages.finetune models/base ... dvclive/finetune

Only rank 0 writes the adapter, the metrics file, DVCLive and the W&B run.
"""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from skillcall import distributed, plots, tracking
from skillcall.examples import load_skills
from skillcall.params import load_params

# models/train_metrics.json (a DVC metric, a column each in ``dvc exp show``): these keys only. Every metric of the
# run (steps, tokens, memory, processes ...) is in the adapter's training.json and the W&B summary.
HEADLINE = ("train_loss", "val_loss", "train_seconds")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("base_dir", "train", "val", "examples", "adapter", "metrics", "live"):
        ap.add_argument(name)
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    ap.add_argument("--checkpoints", default="checkpoints/finetune", help="checkpoint folder (default: %(default)s)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    processes, threads = distributed.launch_params("finetune")
    if processes > 1 and not distributed.launched():
        if status := distributed.relaunch("stages.finetune", argv, processes, threads):
            raise SystemExit(status)
        return
    # imported here, so a process that only relaunches never loads torch/transformers (~10-30 s on this CPU)
    from skillcall.models import adapter_metadata
    from skillcall.train import FinetuneParams, save_adapter, train

    params = load_params("finetune", FinetuneParams)
    skills = load_skills(args.examples)
    if distributed.rank() != 0:  # a worker rank: trains its share, writes nothing
        train(params, args.base_dir, args.train, args.val, skills, args.checkpoints, args.resume)
        return
    config = {**asdict(params), "base_model": args.base_dir}
    run = tracking.init_run("finetune", config, load_params("wandb", tracking.WandbParams), stage="finetune")
    tracking.use_dataset(run, Path(args.train).parent)  # the collect stage's dataset artifact, when it is one
    live = tracking.live(args.live, resume=args.resume)

    result = train(params, args.base_dir, args.train, args.val, skills, args.checkpoints, args.resume, run, live)
    save_adapter(args.adapter, result, skills, params)
    Path(args.metrics).write_text(json.dumps({k: result.metrics[k] for k in HEADLINE}, indent=2) + "\n")

    columns = ["utterance", "gold", "prediction", "correct"]
    tracking.log_table(run, "val/samples", columns, [[s[c] for c in columns] for s in result.samples])
    tracking.log_artifact(run, tracking.MODEL_ARTIFACT, "model", args.adapter, adapter_metadata(args.adapter))
    run.summary.update(result.metrics)
    plots.log_images(run, [plots.write_loss_plot(args.live)], "finetune")
    run.finish()
    live.end()
    print(f"finetune: {json.dumps(result.metrics)}")


if __name__ == "__main__":
    main()
