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
