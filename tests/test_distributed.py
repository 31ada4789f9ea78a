"""Data-parallel fine-tuning through the real stage: ``finetune.processes: 2`` relaunches it under torchrun (gloo DDP).

On the tiny model, 2 ranks x batch 2 must follow the same loss curve and end at the same adapter as 1 process x
batch 4 (the same examples form each global batch; the loss is averaged over the batch's answer tokens either way),
and only rank 0 writes: one adapter, one metrics file, one DVCLive folder, one W&B run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import TINY_EXAMPLES, TINY_TRAIN, TINY_VAL, _rows
from safetensors.torch import load_file
from wandb_files import records, run_dirs

from skillcall.dataset import write_jsonl

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
STEPS = 4
# 1 process x batch 4 vs 2 ranks x batch 2: same global batches, fp32 sums in another order
LOSS_TOL, WEIGHT_TOL = 1e-4, 1e-4


@dataclass
class StageRun:
    root: Path
    wall_s: float

    @property
    def losses(self) -> list[float]:
        with (self.root / "live" / "plots" / "metrics" / "train" / "loss.tsv").open() as f:
            return [float(r["loss"]) for r in csv.DictReader(f, delimiter="\t")]

    @property
    def adapter(self) -> dict:
        return load_file(self.root / "adapter" / "adapter_model.safetensors")

    @property
    def metrics(self) -> dict:
        """Every metric of the run (train_metrics.json, the DVC metric, holds the headline ones only)."""
        return json.loads((self.root / "adapter" / "training.json").read_text())["metrics"]


def run_stage(root: Path, model_dir: Path, **finetune) -> StageRun:
    """``python -m stages.finetune`` in ``root`` (own params.yaml, data, W&B dir) with tiny finetune params.

    With ``processes: 1`` the stage runs in this process (saves importing torch once more, ~10-30 s here).
    """
    root.mkdir(parents=True)
    shutil.copytree(REPO / "prompts", root / "prompts")
    (root / "examples").mkdir()
    for name, text in TINY_EXAMPLES.items():
        (root / "examples" / name).write_text(text)
    write_jsonl(root / "train.jsonl", _rows(TINY_TRAIN[:8]))
    write_jsonl(root / "val.jsonl", _rows(TINY_VAL))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["finetune"].update(
        {
            "threads": 1,
            "dtype": "float32",  # the rank-vs-process comparisons hold to fp32 rounding, not bf16's
            "max_steps": STEPS,
            "learning_rate": 1e-2,
            "warmup_steps": 0,
            "logging_steps": 1,
            "save_steps": 100,
            "eval_batch_size": 4,
            "sample_predictions": 2,
            "max_new_tokens": 4,
            **finetune,
        }
    )
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("DVC_EXP_NAME", None)
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        env[var] = str(root / "wandb" / var.lower())
        Path(env[var]).mkdir(parents=True)
    args = [str(model_dir), "train.jsonl", "val.jsonl", "examples", "adapter", "train_metrics.json", "live"]
    args += ["--checkpoints", "ckpt"]
    start = time.monotonic()
    if params["finetune"]["processes"] == 1:
        import wandb
        from stages import finetune as stage

        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(root)
            for k, v in env.items():
                mp.setenv(k, v)
            mp.delenv("DVC_EXP_NAME", raising=False)
            wandb.teardown()  # wandb reads its variables once per process
            stage.main(args)
            wandb.teardown()
    else:
        proc = subprocess.run(
            [sys.executable, "-m", "stages.finetune", *args], cwd=root, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return StageRun(root, time.monotonic() - start)


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[StageRun, StageRun]:
    """The stage with 1 process x batch 4, and with ``processes: 2`` x batch 2."""
    root = tmp_path_factory.mktemp("ddp")
    one = run_stage(root / "one", tiny_model_dir, processes=1, batch_size=4)
    two = run_stage(root / "two", tiny_model_dir, processes=2, batch_size=2)
    print(f"stage wall time: 1 process (in-process) {one.wall_s:.1f} s, 2 processes (torchrun) {two.wall_s:.1f} s")
    return one, two


def test_ddp_two_processes_follow_the_loss_curve_of_one_with_double_batch(one_and_two):
    one, two = one_and_two
    assert len(one.losses) == len(two.losses) == STEPS
    assert len(set(one.losses)) == STEPS  # a curve, not a constant
    assert two.losses == pytest.approx(one.losses, abs=LOSS_TOL)


def test_ddp_two_processes_write_the_same_adapter(one_and_two):
    one, two = one_and_two
    a, b = one.adapter, two.adapter
    assert a.keys() == b.keys() and a
    for name in a:
        assert (a[name] - b[name]).abs().max() <= WEIGHT_TOL, name
    trained = [name for name in a if "lora_B" in name]
    assert any(a[name].abs().max() > 0 for name in trained)  # LoRA B starts at 0: the weights moved


def test_ddp_metrics_count_both_processes(one_and_two):
    one, two = one_and_two
    assert (one.metrics["processes"], two.metrics["processes"]) == (1, 2)
    assert one.metrics["examples_per_step"] == two.metrics["examples_per_step"] == 4
    assert one.metrics["steps"] == two.metrics["steps"] == STEPS
    prefix = one.metrics["shared_prefix_tokens"]  # each rank runs the shared prefix once per step
    assert two.metrics["tokens"] == one.metrics["tokens"] + prefix * STEPS
    # val loss over the whole val split: torchrun shards it (the sampler repeats one of the 3 rows to even out the
    # shards, and each rank averages its own tokens), so it moves by a share of the rows' spread, not by fp noise:
    # 1% of the random model's ~10 nats (the adapters themselves agree to 1e-4 above)
    assert two.metrics["val_loss"] == pytest.approx(one.metrics["val_loss"], rel=1e-2)


def test_distributed_stage_writes_once_from_rank_0(one_and_two):
    _, two = one_and_two
    assert sorted(p.name for p in two.root.glob("*metrics*.json")) == ["train_metrics.json"]
    assert len(list((two.root / "live").glob("**/metrics.json"))) == 1  # DVCLive's summary
    (run,) = run_dirs(two.root / "wandb" / "wandb_dir")
    kinds = [r.WhichOneof("record_type") for r in records(run)]
    assert kinds.count("run") == 1 and "exit" in kinds
    assert sorted(p.name for p in (two.root / "adapter").glob("*.safetensors")) == ["adapter_model.safetensors"]
