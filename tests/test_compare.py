"""The experiments table, built from a recorded ``dvc exp show --json`` (tiny profile: main, an experiment with
lora.r=4 and lr=0.005, one queued from it with r=8, one failed) and per-skill accuracies read back from git."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from skillcall.compare import (
    WORKSPACE,
    changed_params,
    experiments,
    read_per_skill,
    render,
    skill_table,
    summary_table,
)

EXP_SHOW = json.loads((Path(__file__).parent / "data" / "exp_show.json").read_text())


def test_experiments_are_the_commit_and_its_successful_runs():
    exps = experiments(EXP_SHOW)
    assert [e.name for e in exps] == ["main", "grade-ribs", "lento-ages"]  # the failed aglow-slew is left out
    assert [e.params["finetune.lora.r"] for e in exps] == [16, 8, 4]
    assert exps[1].rev.startswith("73b0e2b") and exps[1].metrics["train_loss"] == 10.73096752166748
    assert [e.name for e in experiments(EXP_SHOW, workspace=True)][0] == WORKSPACE


def test_only_the_params_that_differ_are_columns():
    exps = experiments(EXP_SHOW)
    assert changed_params(exps) == ["finetune.lora.r", "finetune.learning_rate"]
    assert changed_params(exps[1:]) == ["finetune.lora.r"]


def test_summary_table_short_headers_and_rounded_values():
    header, rows = summary_table(experiments(EXP_SHOW))
    assert header[:3] == ["experiment", "lora.r", "learning_rate"]
    assert {"ast", "exact", "valid", "other_f1", "holdout", "base", "p50_ms", "train_loss", "train_s"} <= set(header)
    assert "constr" not in header  # no experiment has the metric: no column
    main = dict(zip(header, rows[0], strict=True))
    assert (main["lora.r"], main["learning_rate"], main["ast"], main["p50_ms"], main["train_loss"]) == (
        "16",
        "0.002",
        "0.000",
        "10",
        "10.767",
    )
    text = render(header, rows)
    assert max(map(len, text.splitlines())) <= 160 and len(text.splitlines()) == 4


def test_skill_table_gives_deltas_against_the_reference():
    per_skill = {"main": {"timer": 0.5, "other": 1.0}, "exp-a": {"timer": 0.75, "other": 1.0}, "exp-b": {}}
    header, rows = skill_table(per_skill, "main")
    assert header == ["skill", "main", "exp-a", "exp-b"]
    assert rows == [["other", "1.000", "0", "-"], ["timer", "0.500", "+0.250", "-"]]
    assert skill_table(per_skill, "exp-a")[1][1] == ["timer", "0.750", "-0.250", "-"]


def test_render_aligns_text_and_writes_markdown():
    header, rows = ["experiment", "ast"], [["main", "0.900"], ["a-long-name", "0.85"]]
    assert render(header, rows).splitlines() == ["experiment     ast", "main         0.900", "a-long-name   0.85"]
    assert render(header, rows, md=True).splitlines()[:2] == ["| experiment | ast |", "| :-- | --: |"]


def test_per_skill_is_read_from_each_commit_and_the_workspace(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "eval").mkdir()
    path = tmp_path / "eval" / "per_skill.json"
    path.write_text(json.dumps([{"skill": "timer", "accuracy": 0.5, "count": 2}]))
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=tmp_path, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    path.write_text(json.dumps([{"skill": "timer", "accuracy": 1.0, "count": 2}]))
    assert read_per_skill(sha, tmp_path) == {"timer": 0.5}
    assert read_per_skill(WORKSPACE, tmp_path) == {"timer": 1.0}
    assert read_per_skill("0" * 40, tmp_path) == {}  # a commit without the file: no per-skill column values
