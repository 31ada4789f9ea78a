"""W&B lineage, read from the offline run files: collect logs the dataset, finetune uses it and logs the adapter,
eval uses the adapter. A run "uses" an artifact by content: the same files give the same digest."""

import json
from pathlib import Path

import pytest
import yaml
from conftest import TINY_EXAMPLES, TINY_TRAIN, TINY_VAL
from wandb_files import artifacts, config, records, run_dirs, summary

from skillcall import tracking

ROOT = Path(__file__).resolve().parents[1]
WANDB = {"project": "test", "entity": None, "group": None, "tags": []}


def write_examples(directory):
    """The tiny skill files with all tiny pairs as examples: enough rows for three splits per skill."""
    directory.mkdir()
    for name, text in TINY_EXAMPLES.items():
        skill = name.removesuffix(".txt")
        pairs = [(u, a) for u, a in TINY_TRAIN + TINY_VAL if a.startswith(f"{skill}(") and u not in text]
        body = "".join(f"\n### User: {u}\n### Assistant: {a}\n" for u, a in pairs)
        (directory / name).write_text(f"{text}\n#### Examples:\n{body}")


def collect_stage(tmp_path, monkeypatch, extra_params=None):
    from stages import collect

    params = {"collect": {"seed": 0, "val_fraction": 0.3, "test_fraction": 0.3}, "wandb": WANDB, **(extra_params or {})}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    write_examples(tmp_path / "examples")
    collect.main(["examples", "generated", "rejected.txt", "dataset"])
    return tmp_path / "dataset"


def by_job(wandb_dir) -> dict:
    """``{job_type: run_dir}`` of the offline runs (one per job type here)."""
    out = {}
    for d in run_dirs(wandb_dir):
        (record,) = [r for r in records(d) if r.WhichOneof("record_type") == "run"]
        out[record.run.job_type] = d
    return out


def test_collect_logs_the_dataset_artifact_and_a_consumer_uses_the_same_version(wandb_offline, tmp_path, monkeypatch):
    dataset = collect_stage(tmp_path, monkeypatch)
    stats = json.loads((dataset / "stats.json").read_text())
    assert all(n > 0 for n in stats["splits"].values())

    (run_dir,) = run_dirs(wandb_offline)
    assert config(run_dir)["val_fraction"] == 0.3 and summary(run_dir)["splits"] == stats["splits"]
    (logged,) = artifacts(run_dir)
    assert (logged.name, logged.type, logged.use_after_commit) == ("skillcall-dataset", "dataset", False)
    assert sorted(e.path for e in logged.manifest.contents) == ["stats.json", "test.jsonl", "train.jsonl", "val.jsonl"]
    assert json.loads(logged.metadata) == stats

    consumer = tracking.init_run("finetune", {}, tracking.WandbParams(**WANDB))
    tracking.use_dataset(consumer, dataset)
    consumer.finish()
    (used,) = artifacts(by_job(wandb_offline)["finetune"])
    assert (used.name, used.type, used.digest) == (logged.name, logged.type, logged.digest)
    assert used.use_after_commit and used.user_created

    (dataset / "train.jsonl").write_text((dataset / "train.jsonl").read_text() + "\n")  # other content: other version
    assert tracking.artifact("skillcall-dataset", "dataset", [dataset], {}).digest != logged.digest


def test_collect_without_wandb_writes_no_run(wandb_offline, tmp_path, monkeypatch):
    from stages import collect

    write_examples(tmp_path / "examples")
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"collect": {"seed": 0, "val_fraction": 0.3, "test_fraction": 0.3}})
    )
    monkeypatch.chdir(tmp_path)
    collect.main(["examples", "generated", "rejected.txt", "dataset", "--no-wandb"])
    assert (tmp_path / "dataset" / "train.jsonl").exists() and run_dirs(wandb_offline) == []


def test_a_folder_without_the_dataset_files_is_not_logged_nor_used(tmp_path):
    (tmp_path / "train.jsonl").write_text("")
    with pytest.raises(FileNotFoundError, match="stats.json"):
        tracking.log_dataset(None, tmp_path)
    assert tracking.use_dataset(None, tmp_path) is None


def pipeline_params(tiny_model_dir) -> dict:
    """The repo's finetune/eval params, shrunk for the tiny model; prompt paths made absolute."""
    repo = yaml.safe_load((ROOT / "params.yaml").read_text())
    finetune = {**repo["finetune"], "max_steps": 2, "batch_size": 4, "warmup_steps": 0, "sample_predictions": 0}
    finetune["prompt"] = {k: str(ROOT / v) if k.endswith("template") else v for k, v in finetune["prompt"].items()}
    evaluate = {**repo["eval"], "batch_size": 4, "max_new_tokens": 4, "baseline": False}
    return {"finetune": finetune, "eval": evaluate}


@pytest.mark.slow
def test_lineage_dataset_to_adapter_to_eval(wandb_offline, tmp_path, monkeypatch, tiny_model_dir):
    """collect logs the dataset; finetune uses that version and logs the adapter; eval uses that adapter version."""
    from stages import eval as eval_stage
    from stages import finetune

    dataset = collect_stage(tmp_path, monkeypatch, pipeline_params(tiny_model_dir))
    adapter = tmp_path / "adapter"
    finetune.main(
        [str(tiny_model_dir), str(dataset / "train.jsonl"), str(dataset / "val.jsonl"), "examples", str(adapter)]
        + ["train_metrics.json", "dvclive", "--checkpoints", "ckpt"]
    )
    eval_stage.main(["--adapter", str(adapter), "--dataset", str(dataset), "--out", "eval"])

    runs = by_job(wandb_offline)
    assert set(runs) == {"collect", "finetune", "eval"}
    (dataset_logged,) = artifacts(runs["collect"])
    (dataset_used,) = [a for a in artifacts(runs["finetune"]) if a.type == "dataset"]
    (model_logged,) = [a for a in artifacts(runs["finetune"]) if a.type == "model"]
    (model_used,) = [a for a in artifacts(runs["eval"]) if a.type == "model"]
    assert (dataset_used.type, dataset_used.digest, dataset_used.use_after_commit) == (
        "dataset",
        dataset_logged.digest,
        True,
    )
    assert (model_logged.name, model_logged.type, model_logged.use_after_commit) == (
        "skillcall-adapter",
        "model",
        False,
    )
    assert (model_used.name, model_used.digest, model_used.use_after_commit) == (
        model_logged.name,
        model_logged.digest,
        True,
    )
    assert json.loads(model_used.metadata) == json.loads(model_logged.metadata)
    assert config(runs["eval"])["evaluated"]["adapter"] == str(adapter)
