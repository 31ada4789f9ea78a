"""The whole pipeline under the real ``dvc`` CLI, on the tiny profile (tiny random model, 10 pairs per skill, 2 steps).

One module fixture reproduces a copy of the repository once and commits the result; every test works on its own
copy of that folder, so the tests do not depend on each other or on their order.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dvc_repo import copy_repo, ran_stages, run, set_params
from wandb_files import config, records, run_dirs, summary

pytestmark = pytest.mark.slow

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
# Wall-clock fields of the DVC metrics: never identical between two runs.
TIMING_FIELDS = {"latency_ms_p50", "latency_ms_p95", "train_seconds"}


def tiny_profile(model_dir: Path) -> dict:
    """params.yaml overrides that make a full ``dvc repro`` take about a minute on 2 CPU cores."""
    return {
        "base": {"model": str(model_dir)},
        "generate": {"per_skill": 10, "counts": {"other": 20}},
        "finetune": {
            "threads": 1,
            "max_steps": 2,
            "batch_size": 4,
            "warmup_steps": 0,
            "logging_steps": 1,
            "save_steps": 100,
            "eval_steps": 1,
            "eval_rows": 4,
            "eval_batch_size": 8,
            "sample_predictions": 2,
            "max_new_tokens": 12,
        },
        "eval": {"max_new_tokens": 12, "baseline": True},
    }


def commit(repo: Path, message: str, env: dict[str, str]) -> None:
    run(["git", "add", "-A"], repo, env)
    run([*GIT, "commit", "-qm", message], repo, env)


def outside_env(root: Path) -> dict[str, str]:
    """W&B (offline) runs and state under ``root``, outside the repository; one thread per process."""
    out = {"WANDB_DIR": str(root / "runs"), "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        out[var] = str(root / var.lower())
    for path in out.values():
        if path.startswith("/"):
            Path(path).mkdir(parents=True, exist_ok=True)
    return out


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def without_timing(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING_FIELDS}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A git copy of the repo on the tiny profile after a full ``dvc repro``, everything committed."""
    repo = copy_repo(tmp_path_factory.mktemp("reproduced"))
    env = outside_env(tmp_path_factory.mktemp("reproduced_wandb"))
    set_params(repo, tiny_profile(tiny_model_dir))
    commit(repo, "tiny profile", env)
    out = run(["dvc", "repro"], repo, env)
    assert {"base", "generate@weather", "collect", "finetune", "eval"} <= set(ran_stages(out))
    commit(repo, "reproduced", env)
    return repo


@pytest.fixture
def workspace(reproduced: Path, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A private copy of the reproduced repo and an env whose W&B runs land in ``tmp_path/wandb/runs``; no queue
    worker outlives the test."""
    repo = Path(shutil.copytree(reproduced, tmp_path / "repo", symlinks=True))
    yield repo, outside_env(tmp_path / "wandb")
    stop_workers(repo)


def test_only_changed_stages_rerun(workspace):
    repo, env = workspace
    second = run(["dvc", "repro"], repo, env)
    assert ran_stages(second) == [] and "Data and pipelines are up to date" in second

    with (repo / "examples" / "weather.txt").open("a") as f:
        f.write('\n### User: will it snow in Reykjavik tomorrow\n### Assistant: weather(location="Reykjavik")\n')
    assert sorted(ran_stages(run(["dvc", "repro"], repo, env))) == [
        "collect",
        "eval",
        "export",
        "finetune",
        "generate@weather",
    ]

    set_params(repo, {"eval": {"max_new_tokens": 10}})
    assert ran_stages(run(["dvc", "repro"], repo, env)) == ["eval"]

    set_params(repo, {"finetune": {"learning_rate": 5.0e-3}})
    assert ran_stages(run(["dvc", "repro"], repo, env)) == ["finetune", "eval", "export"]
    assert "up to date" in run(["dvc", "status"], repo, env)


def exp_rows(repo: Path, env: dict[str, str]) -> list[dict]:
    """``dvc exp show --json`` flattened: ``[{"name", "params", "metrics", "deps"}]`` for every experiment."""
    out = []
    for commit_entry in json.loads(run(["dvc", "exp", "show", "--json"], repo, env)):
        for exp in commit_entry.get("experiments") or []:
            for rev in exp["revs"]:
                data = rev["data"]
                out.append(
                    {
                        "name": rev["name"],
                        "params": data["params"]["params.yaml"]["data"],
                        "metrics": data["metrics"]["eval/metrics.json"]["data"],
                        "train_metrics": data["metrics"]["models/train_metrics.json"]["data"],
                        "deps": {path: d["hash"] for path, d in data["deps"].items()},
                    }
                )
    return out


def start_queue(repo: Path, env: dict[str, str], jobs: int) -> None:
    """``dvc queue start -j jobs``, its output in a file, not a pipe: each worker is a forked child of the command
    and keeps its stdout, so a captured ``dvc queue start`` returns only once its workers exit. A worker can miss
    its own shutdown (dvc-task asked it to stop while its task still ran: the other worker had emptied the queue)
    and idle on after its task succeeded; :func:`wait_for_queue` reads the tasks' states instead."""
    run(["dvc", "queue", "start", "-j", str(jobs)], repo, env, log=repo.parent / "dvc-queue-start.log")


def stop_workers(repo: Path) -> None:
    """Kill the queue workers still alive (each in the process group of its forked launcher; never this one's)."""
    for pidfile in (repo / ".dvc/tmp/exps/celery").glob("dvc-exp-worker-*.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            if (group := os.getpgid(int(pidfile.read_text()))) != os.getpgrp():
                os.killpg(group, signal.SIGKILL)


def wait_for_queue(repo: Path, env: dict[str, str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo, env)
        if not any(word in status for word in ("Queued", "Running")):
            failed = [line.split()[0] for line in status.splitlines() if "Failed" in line]
            assert not failed, status + "".join(run(["dvc", "queue", "logs", task], repo, env) for task in failed)
            return
        time.sleep(2)
    raise AssertionError(f"dvc queue still busy after {timeout} s:\n{status}")


def wandb_runs(wandb_root: Path) -> dict[tuple[str, str], list[Path]]:
    """Offline W&B run folders by (run name = ``DVC_EXP_NAME``, job type)."""
    out: dict[tuple[str, str], list[Path]] = {}
    for run_dir in run_dirs(wandb_root):
        (r,) = [r.run for r in records(run_dir) if r.WhichOneof("record_type") == "run"]
        out.setdefault((r.display_name, r.job_type), []).append(run_dir)
    return out


def run_span(run_dir: Path) -> tuple[float, float]:
    """(start, end) in seconds since the epoch of an offline W&B run: folder name time stamp, last write."""
    start = time.mktime(time.strptime(run_dir.name.split("-")[2], "%Y%m%d_%H%M%S"))
    return start, max(p.stat().st_mtime for p in run_dir.glob("run-*.wandb"))


def test_experiments_run_queue_show_and_track(workspace):
    repo, env = workspace
    # two queued experiments run side by side by two queue workers; one of them trains data-parallel (2 ranks)
    for r, processes, lr in ((2, 2, 2.0e-3), (8, 1, 5.0e-3)):
        run(
            ["dvc", "exp", "run", "--queue", "-S", f"finetune.lora.r={r}", "-S", f"finetune.processes={processes}"]
            + ["-S", f"finetune.learning_rate={lr}"],
            repo,
            env,
        )
    start_queue(repo, env, jobs=2)
    wait_for_queue(repo, env)

    exps = exp_rows(repo, env)
    assert sorted(e["params"]["finetune"]["lora"]["r"] for e in exps) == [2, 8]
    assert {e["params"]["finetune"]["lora"]["r"]: e["params"]["finetune"]["learning_rate"] for e in exps} == {
        2: 2.0e-3,
        8: 5.0e-3,
    }
    n_test = len((repo / "data/dataset/test.jsonl").read_text().splitlines())
    for e in exps:
        m = e["metrics"]
        assert (
            set(e["train_metrics"]) == {"train_loss", "val_loss", "train_seconds"}
            and e["train_metrics"]["train_seconds"] > 0
        )
        assert {"exact_match", "ast_accuracy", "valid_rate", "baseline_ast_accuracy", "holdout_ast_accuracy"} <= set(m)
        # a byte-exact call is AST-correct, an AST-correct one valid
        assert m["exact_match"] <= m["ast_accuracy"] <= m["valid_rate"]

    # two finetune params changed: the compact table still fits a terminal and names both experiments
    table = run([sys.executable, "-m", "skillcall.compare"], repo, {**env, "COLUMNS": "160"})
    assert fits(table) and all(e["name"] in table for e in exps), table
    assert all(column in table for column in ("lora.r", "learning_rate", "train_loss", "val_loss", "train_s")), table

    runs = wandb_runs(Path(env["WANDB_DIR"]))
    # -j 2: the two queued experiments' finetune stages ran at the same time (one after the other with -j 1)
    (a,), (b,) = (runs[(e["name"], "finetune")] for e in exps if e["params"]["finetune"]["lora"]["r"] in (2, 8))
    (a_start, a_end), (b_start, b_end) = run_span(a), run_span(b)
    assert a_start < b_end and b_start < a_end, (run_span(a), run_span(b))
    for e in exps:
        (finetune,) = runs.get((e["name"], "finetune"), [])
        (evaluated,) = runs.get((e["name"], "eval"), [])
        assert summary(evaluated)["details"]["test"]["n"] == n_test  # each experiment scored the whole test split
        cfg = config(finetune)
        assert summary(finetune)["processes"] == e["params"]["finetune"]["processes"]  # ranks that really trained
        assert cfg["lora"]["r"] == e["params"]["finetune"]["lora"]["r"]
        assert cfg["learning_rate"] == e["params"]["finetune"]["learning_rate"]
        for path in ("data/dataset/train.jsonl", "data/dataset/val.jsonl", "models/base"):
            assert cfg["dvc_inputs"][path] == e["deps"][path], path


def fits(table: str, width: int = 160) -> bool:
    """No line wider than ``width`` and no column collapsed by rich into "…"."""
    return max(map(len, table.splitlines())) <= width and "…" not in table


def test_exp_show_only_changed_fits_160_columns(workspace):
    """Two experiments differing in one eval param: ``dvc exp show --only-changed`` and ``skillcall.compare`` fit a
    160-column terminal (rich collapses the columns that do not fit into "…"). A finetune param adds the adapter's
    hash (35 columns) and the training numbers: the queue test checks ``skillcall.compare`` for that case."""
    repo, env = workspace
    names = []
    for tokens in (10, 11):
        out = run(["dvc", "exp", "run", "-S", f"eval.max_new_tokens={tokens}"], repo, env)
        assert ran_stages(out) == ["eval"]
        names.append(out.split("Ran experiment(s): ")[1].split()[0])
    wide = {**env, "COLUMNS": "160"}
    shown = run(["dvc", "exp", "show", "--only-changed", "--no-pager"], repo, wide)
    assert fits(shown), shown
    assert all(name in shown for name in names) and "eval.max_new_tokens" in shown and "latency_ms_p50" in shown, shown
    for args in ([], ["--md"]):
        table = run([sys.executable, "-m", "skillcall.compare", *args], repo, wide)
        assert fits(table), table
        assert all(name in table for name in names) and "max_new_tokens" in table and "per-skill" in table, table


PNGS = ["dvclive/finetune/plots/images/loss.png", "eval/plots/per_skill.png", "eval/plots/confusion.png"]


def test_static_plots_exist_and_dvc_shows_them(workspace):
    repo, env = workspace
    for png in PNGS:
        assert (repo / png).read_bytes().startswith(b"\x89PNG") and (repo / png).stat().st_size > 5000, png
    listed = json.loads(run(["dvc", "plots", "show", "--json"], repo, env))["data"]
    assert set(PNGS) <= set(listed), sorted(listed)
    assert all(listed[png][0]["type"] == "image" for png in PNGS)
    assert {"dvclive/finetune/plots/metrics/val/loss.tsv", "eval/per_skill.json"} <= set(listed)
    val_loss = (repo / "dvclive/finetune/plots/metrics/val/loss.tsv").read_text().splitlines()[1:]
    assert [int(line.split("\t")[0]) for line in val_loss] == [1, 2]  # a curve: every eval_steps, once each


def test_push_clone_pull_gives_identical_files(workspace, tmp_path):
    repo, env = workspace
    run(["dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")], repo, env)
    commit(repo, "remote", env)
    run(["dvc", "push"], repo, env)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    run(["dvc", "pull"], clone, env)
    for folder in ("data/generated", "data/dataset", "models/adapter", "models/base"):
        assert files(clone / folder) == files(repo / folder), folder
    assert "up to date" in run(["dvc", "status"], clone, env)
    assert ran_stages(run(["dvc", "repro"], clone, env)) == []


def test_forced_rerun_reproduces_data_adapter_and_metrics(workspace, reproduced):
    repo, env = workspace
    out = run(["dvc", "repro", "--force"], repo, env)
    assert {"base", "collect", "finetune", "eval"} <= set(ran_stages(out))
    assert files(repo / "data") == files(reproduced / "data")
    from safetensors.torch import load_file

    first = load_file(reproduced / "models/adapter/adapter_model.safetensors")
    second = load_file(repo / "models/adapter/adapter_model.safetensors")
    assert first.keys() == second.keys() and all((first[k] == second[k]).all() for k in first)
    for name in ("eval/metrics.json", "models/train_metrics.json"):
        metrics = [json.loads((r / name).read_text()) for r in (reproduced, repo)]
        assert without_timing(metrics[0]) == without_timing(metrics[1]), name
    assert [json.loads(line)["raw"] for line in (repo / "eval/predictions.jsonl").read_text().splitlines()] == [
        json.loads(line)["raw"] for line in (reproduced / "eval/predictions.jsonl").read_text().splitlines()
    ]
