import json

import pytest
import yaml
from wandb_files import artifacts, config, history, run_dirs, summary

from skillcall import tracking


def test_run_name_is_the_dvc_experiment(monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "fussy-tern")
    assert tracking.run_name() == "fussy-tern"
    monkeypatch.delenv("DVC_EXP_NAME")
    assert tracking.run_name() is None


def test_dvc_lock_hashes_prefers_the_upstream_outputs(tmp_path):
    lock = {
        "schema": "2.0",
        "stages": {
            "collect": {"cmd": "c", "outs": [{"path": "data/train.jsonl", "md5": "new", "size": 1, "hash": "md5"}]},
            "finetune": {
                "cmd": "f",
                "deps": [
                    {"path": "data/train.jsonl", "md5": "old", "size": 1, "hash": "md5"},
                    {"path": "skillcall/train.py", "md5": "code", "size": 1, "hash": "md5"},
                ],
            },
        },
    }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert tracking.dvc_lock_hashes("finetune", tmp_path / "dvc.lock") == {
        "data/train.jsonl": "new",
        "skillcall/train.py": "code",
    }
    assert tracking.dvc_lock_hashes("eval", tmp_path / "dvc.lock") == {}
    assert tracking.dvc_lock_hashes("finetune", tmp_path / "missing.lock") == {}


def test_secrets_never_reach_the_config(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    with pytest.raises(ValueError, match="api_key"):
        tracking.safe_config({"generate": {"api_key": "x"}})
    with pytest.raises(ValueError, match="secret variable"):
        tracking.safe_config({"base_url": "https://x/?k=sk-test-123"})
    assert tracking.safe_config({"api_key": None, "max_new_tokens": 3}) == {"api_key": None, "max_new_tokens": 3}


def test_offline_run_writes_config_history_table_and_artifact(wandb_offline, tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.lock").write_text(
        yaml.safe_dump({"stages": {"finetune": {"deps": [{"path": "a.txt", "md5": "abc"}]}}})
    )
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(b"123")
    params = tracking.WandbParams(project="p", entity=None, group="g", tags=["t"])
    run = tracking.init_run("finetune", {"lr": 0.5}, params, stage="finetune")
    assert run.name == "exp-1" and run.group == "g" and set(run.tags) == {"t", "finetune"}
    run.log({"train/loss": 1.5}, step=1)
    tracking.log_table(run, "val/samples", ["utterance", "correct"], [["hi", True]])
    tracking.log_artifact(run, "adapter", "model", tmp_path / "model", {"base_model": "tiny", "metrics": {"a": 1}})
    run.finish()

    (run_dir,) = run_dirs(wandb_offline)
    assert config(run_dir)["lr"] == 0.5 and config(run_dir)["dvc_inputs"] == {"a.txt": "abc"}
    assert any(h.get("train/loss") == 1.5 for h in history(run_dir))
    (table,) = (run_dir / "files" / "media" / "table" / "val").glob("samples_*.table.json")
    assert json.loads(table.read_text())["data"] == [["hi", True]]
    assert summary(run_dir)["val/samples/_type"] == "table-file"
    (artifact,) = [a for a in artifacts(run_dir) if a.type == "model"]
    assert artifact.type == "model" and artifact.name == "adapter"
    assert json.loads(artifact.metadata) == {"base_model": "tiny", "metrics": {"a": 1}}
    assert [e.path for e in artifact.manifest.contents] == ["w.bin"]
