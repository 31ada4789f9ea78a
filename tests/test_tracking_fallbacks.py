"""No quiet fallback in tracking: a missing dvc.lock entry or a dataset folder that is not the collect stage's
output still lets the run go on, but the stage prints a WARNING line and the run's summary lists it."""

import yaml
from wandb_files import artifacts, config, run_dirs, summary

from skillcall import tracking

PARAMS = tracking.WandbParams(project="p")


def test_missing_lock_or_stage_entry_or_hash_is_a_warning(tmp_path, capsys):
    assert tracking.dvc_lock_hashes("finetune", tmp_path / "dvc.lock") == {}
    assert "WARNING: " in capsys.readouterr().err
    lock = {"stages": {"finetune": {"deps": [{"path": "a.txt", "md5": "abc"}, {"path": "b.txt"}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert tracking.lock_inputs("eval", tmp_path / "dvc.lock") == (
        {},
        f"{tmp_path / 'dvc.lock'} has no entry for stage 'eval' yet (its first run, or a run outside `dvc repro`): "
        "the run records no input hashes",
    )
    hashes, problem = tracking.lock_inputs("finetune", tmp_path / "dvc.lock")
    assert (
        hashes == {"a.txt": "abc", "b.txt": ""}
        and problem == f"{tmp_path / 'dvc.lock'}: no hash for b.txt (stage 'finetune')"
    )


def test_runs_record_the_fallbacks_in_their_summary(wandb_offline, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no dvc.lock here
    hand_made = tmp_path / "data"
    hand_made.mkdir()
    (hand_made / "train.jsonl").write_text("{}\n")
    run = tracking.init_run("finetune", {"lr": 0.1}, PARAMS, stage="finetune")
    assert tracking.use_dataset(run, hand_made) is None
    run.finish()
    err = capsys.readouterr().err
    lock_warning = "dvc.lock not found (a run outside a DVC project?): the run records no input hashes"
    dataset_warning = (
        f"{hand_made} is not the collect stage's output (missing {hand_made / 'val.jsonl'}, {hand_made / 'test.jsonl'}, "
        f"{hand_made / 'stats.json'}): the run declares no skillcall-dataset artifact as its input, so W&B shows no "
        "dataset lineage"
    )
    assert f"WARNING: {lock_warning}\n" in err and f"WARNING: {dataset_warning}\n" in err
    (run_dir,) = run_dirs(wandb_offline)
    assert summary(run_dir)["warnings"] == [lock_warning, dataset_warning]
    assert config(run_dir)["dvc_inputs"] == {} and artifacts(run_dir) == []


def test_a_complete_run_has_no_warnings(wandb_offline, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump({"stages": {"collect": {"deps": [{"path": "x", "md5": "1"}]}}}))
    run = tracking.init_run("collect", {}, PARAMS, stage="collect")
    run.finish()
    (run_dir,) = run_dirs(wandb_offline)
    assert "warnings" not in summary(run_dir) and "WARNING" not in capsys.readouterr().err
