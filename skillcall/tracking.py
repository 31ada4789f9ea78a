"""Experiment tracking: W&B (offline unless ``WANDB_MODE`` says otherwise) and DVCLive.

Run name = ``DVC_EXP_NAME`` (set by ``dvc exp run``); project/entity/group/tags come from the
``wandb:`` section of params.yaml. The config holds the stage's params and the input hashes
recorded in ``dvc.lock``; it never holds secrets (checked). Where something expected is missing (no ``dvc.lock``
entry for the stage, a dataset folder that is not the collect stage's output) the run goes on: the stage prints a
``WARNING:`` line and the run's summary lists it under ``warnings``.

    >>> safe_config({"lr": 1e-3, "max_new_tokens": 32, "nested": {"seed": 0}})
    {'lr': 0.001, 'max_new_tokens': 32, 'nested': {'seed': 0}}
    >>> safe_config({"openai": {"api_key": "sk-..."}})
    Traceback (most recent call last):
    ...
    ValueError: refusing to log config.openai.api_key: it looks like a secret
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_MODE = "offline"
LOCK_FILE = "dvc.lock"
_SECRET_KEY = re.compile(r"(^|_)(api_?key|key|token|secret|password|passwd|credentials?)$", re.I)
_SECRET_ENV = ("WANDB_API_KEY", "OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


@dataclass
class WandbParams:
    project: str
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)


def run_name() -> str | None:
    """``DVC_EXP_NAME`` when ``dvc exp run`` set it, else None (W&B picks a name)."""
    return os.environ.get("DVC_EXP_NAME") or None


def warn(message: str, run: Any | None = None) -> None:
    """Print ``message`` as a ``WARNING:`` line on stderr; with ``run``, also list it in the run summary's
    ``warnings``."""
    print(f"WARNING: {message}", file=sys.stderr, flush=True)
    if run is not None:
        run.summary["warnings"] = [*(run.summary.get("warnings") or []), message]


def lock_inputs(stage: str, lock: str | Path = LOCK_FILE) -> tuple[dict[str, str], str | None]:
    """``({path: md5}, None)``: the inputs of ``stage`` as recorded in ``dvc.lock``; or ``(what there is, why it is
    incomplete)`` when the lock, the stage's entry or an input's hash is missing.

    An input that another stage produces is taken from that stage's ``outs`` (DVC rewrites the lock
    after each stage, so upstream outputs are current while this stage runs); other inputs (code,
    hand-written files) show the hashes of this stage's last locked run.
    """
    path = Path(lock)
    if not path.exists():
        return {}, f"{path} not found (a run outside a DVC project?): the run records no input hashes"
    stages = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stages", {})
    if stage not in stages:
        return {}, (
            f"{path} has no entry for stage {stage!r} yet (its first run, or a run outside `dvc repro`): "
            "the run records no input hashes"
        )
    produced = {o["path"]: o.get("md5", o.get("hash", "")) for s in stages.values() for o in s.get("outs", [])}
    hashes = {d["path"]: produced.get(d["path"], d.get("md5", "")) for d in stages[stage].get("deps", [])}
    unhashed = sorted(p for p, h in hashes.items() if not h)
    return hashes, f"{path}: no hash for {', '.join(unhashed)} (stage {stage!r})" if unhashed else None


def dvc_lock_hashes(stage: str, lock: str | Path = LOCK_FILE) -> dict[str, str]:
    """``{path: md5}`` of the inputs of ``stage`` (see :func:`lock_inputs`); what is missing is a printed warning."""
    hashes, problem = lock_inputs(stage, lock)
    if problem:
        warn(problem)
    return hashes


def safe_config(config: dict) -> dict:
    """``config`` unchanged, after checking that no key names a secret and no value is a secret's value."""
    secrets = {os.environ[v] for v in _SECRET_ENV if os.environ.get(v)}

    def check(obj: Any, where: str) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if _SECRET_KEY.search(str(k)) and v not in (None, "", False):
                    raise ValueError(f"refusing to log {where}{k}: it looks like a secret")
                check(v, f"{where}{k}.")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                check(v, f"{where}{i}.")
        elif isinstance(obj, str) and any(s in obj for s in secrets):
            raise ValueError(f"refusing to log {where.rstrip('.')}: it contains the value of a secret variable")

    check(config, "config.")
    return config


def init_run(job_type: str, config: dict, params: WandbParams, dir: str | None = None, stage: str | None = None) -> Any:
    """Start a W&B run; ``stage`` adds ``config["dvc_inputs"]`` from dvc.lock (what is missing there: a warning on
    stderr and in the run summary's ``warnings``). Mode: WANDB_MODE, else offline."""
    import wandb

    config, problem = dict(config), None
    if stage is not None:
        config["dvc_inputs"], problem = lock_inputs(stage)
    if dir is not None:
        Path(dir).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=params.project,
        entity=params.entity,
        group=params.group,
        tags=[*params.tags, job_type],
        job_type=job_type,
        name=run_name(),
        config=safe_config(config),
        dir=dir,
        mode=os.environ.get("WANDB_MODE", DEFAULT_MODE),
    )
    if problem:
        warn(problem, run)
    return run


def log_table(run: Any, key: str, columns: list[str], rows: list[list]) -> Any:
    """Log ``rows`` as a ``wandb.Table`` under ``key``; returns the table."""
    import wandb

    table = wandb.Table(columns=columns, data=rows)
    run.log({key: table})
    return table


def artifact(name: str, type: str, paths: str | Path | list[str | Path], metadata: dict) -> Any:
    """A ``wandb.Artifact`` of folders (their contents) and files (by base name).

    Its digest depends only on the file names and contents, so the same files give the same version.
    """
    import wandb

    out = wandb.Artifact(name, type=type, metadata=safe_config(metadata))
    for path in paths if isinstance(paths, list) else [paths]:
        if Path(path).is_dir():
            out.add_dir(str(path))
        else:
            out.add_file(str(path), name=Path(path).name)
    return out


def log_artifact(run: Any, name: str, type: str, path: str | Path | list[str | Path], metadata: dict) -> Any:
    """Log a folder (or file, or a list of them) as an artifact of ``type`` with ``metadata``; returns the artifact."""
    return run.log_artifact(artifact(name, type, path, metadata))


def use_artifact(run: Any, name: str, type: str, path: str | Path | list[str | Path], metadata: dict) -> Any:
    """Declare local files as an input of ``run``, by content: the lineage links the run to the version with
    their digest, i.e. the one the producing run logged from the same files (``name``/``type`` must match its).

    ``run.use_artifact`` refuses offline runs (wandb 0.31: "Cannot use artifact when in offline mode"). Offline,
    the run records what ``use_artifact`` does online for a new artifact: an artifact record with
    ``use_after_commit`` set, which ``wandb sync`` commits (the server keeps one version per digest) and then
    marks as used by the run.
    """
    used = artifact(name, type, path, metadata)
    if run.offline:
        return run._log_artifact(used, is_user_created=True, use_after_commit=True)
    return run.use_artifact(used)


DATASET_ARTIFACT = "skillcall-dataset"  # type "dataset": the collect stage's splits and stats
MODEL_ARTIFACT = "skillcall-adapter"  # type "model": the finetune stage's adapter folder
DATASET_FILES = ("train.jsonl", "val.jsonl", "test.jsonl", "stats.json")


def _missing(directory: str | Path) -> list[str]:
    return [str(Path(directory) / name) for name in DATASET_FILES if not (Path(directory) / name).exists()]


def _dataset(directory: str | Path) -> tuple[list[Path], dict]:
    """(the dataset artifact's files in ``directory``, its metadata: ``stats.json``)."""
    paths = [Path(directory) / name for name in DATASET_FILES]
    return paths, json.loads(paths[-1].read_text(encoding="utf-8"))


def log_dataset(run: Any, directory: str | Path) -> Any:
    """Log the collect stage's output folder as the ``dataset`` artifact; metadata: ``stats.json``."""
    if missing := _missing(directory):
        raise FileNotFoundError(f"dataset artifact: missing {', '.join(missing)}")
    return log_artifact(run, DATASET_ARTIFACT, "dataset", *_dataset(directory))


def use_dataset(run: Any, directory: str | Path) -> Any | None:
    """Declare the dataset in ``directory`` as an input of ``run`` (see :func:`use_artifact`).

    None, declaring nothing, when ``directory`` is not a collect output (train/val files put together by hand):
    then a warning on stderr and in the run summary's ``warnings`` says so.
    """
    if missing := _missing(directory):
        warn(
            f"{directory} is not the collect stage's output (missing {', '.join(missing)}): the run declares no "
            f"{DATASET_ARTIFACT} artifact as its input, so W&B shows no dataset lineage",
            run,
        )
        return None
    return use_artifact(run, DATASET_ARTIFACT, "dataset", *_dataset(directory))


def live(dir: str | Path, resume: bool = False) -> Any:
    """A DVCLive logger writing under ``dir`` only (no experiment commits, no edits to dvc.yaml); cleared unless ``resume``."""
    from dvclive import Live

    return Live(str(dir), resume=resume, save_dvc_exp=False, dvcyaml=None)
