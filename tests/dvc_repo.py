"""A throwaway copy of this repository for tests that run the real ``dvc`` CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def env(cwd: Path | None = None) -> dict[str, str]:
    """The test interpreter's bin dir first on PATH, so dvc stages run with this venv's python.

    With ``cwd``, W&B (offline) keeps its artifact staging, cache and settings in ``cwd/.wandb_home``, not in $HOME.
    """
    out = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "WANDB_MODE": "offline",
    }
    if cwd is not None:
        for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
            out[var] = str(Path(cwd).resolve() / ".wandb_home" / var.lower())
    return out


# No single command of a test runs longer than this (s): a hung command fails its test instead of the whole CI run.
COMMAND_TIMEOUT = 900


def run(
    args: list[str],
    cwd: Path,
    extra_env: dict[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT,
    log: Path | None = None,
) -> str:
    """Run a command (env: :func:`env` + ``extra_env``); fail the test with its output if it fails or runs longer
    than ``timeout`` seconds; stdout+stderr. With ``log`` the output goes to that file, not a pipe (a command that
    leaves children behind holding its pipe would make the wait last as long as they do)."""
    with open(log or os.devnull, "w") as out:
        where = {"stdout": out, "stderr": subprocess.STDOUT} if log else {"capture_output": True}
        try:
            proc = subprocess.run(
                args, cwd=cwd, env={**env(cwd), **(extra_env or {})}, text=True, timeout=timeout, **where
            )
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"{' '.join(args)} still running after {timeout} s:\n{e.stdout}\n{e.stderr}") from None
    output = log.read_text() if log else proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{output}"
    return output


def copy_repo(dest: Path) -> Path:
    """Copy the git-tracked and untracked-but-not-ignored files (no DVC outputs, no venv) into a fresh git repo."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], dest)
    return dest


def ran_stages(output: str) -> list[str]:
    """Stage names from ``dvc repro`` output lines such as ``Running stage 'collect':``."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]


def set_params(repo: Path, overrides: dict) -> None:
    """Merge ``overrides`` (nested sections) into ``repo/params.yaml``."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in overrides.items():
        for key, value in values.items():
            params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))
