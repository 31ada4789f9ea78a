"""Data-parallel training through ``torchrun``: relaunching a stage, ranks and threads.

``finetune.processes: 2`` makes ``python -m stages.finetune ARGS`` re-run itself as
``python -m torch.distributed.run --standalone --nproc-per-node 2 -m stages.finetune ARGS`` (torchrun), so dvc.yaml
keeps one command. A process started by a launcher (``LOCAL_RANK`` set: torchrun, ``accelerate launch``, a
multi-node ``torchrun --nnodes``) never relaunches: the launcher's layout wins over ``processes``.

    >>> torchrun_command("stages.finetune", ["models/base", "--resume"], 2)[1:]
    ['-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2', '-m', 'stages.finetune', 'models/base', '--resume']
    >>> threads_per_process(threads=0, cores=8, local_processes=2)  # 0 = share the cores out
    4
    >>> threads_per_process(threads=3, cores=8, local_processes=2)  # an explicit count is per process
    3
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml


def launched() -> bool:
    """True inside a process started by torchrun / accelerate (they set ``LOCAL_RANK``)."""
    return "LOCAL_RANK" in os.environ


def rank() -> int:
    """This process's global rank (0 when not distributed): rank 0 alone writes outputs and tracking runs."""
    return int(os.environ.get("RANK", "0"))


def local_processes() -> int:
    """Processes of this training on this machine (torchrun's ``LOCAL_WORLD_SIZE``; 1 when not distributed)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_process(threads: int, cores: int, local_processes: int) -> int:
    """``threads`` when set, else this machine's cores shared out between its processes (at least 1)."""
    return threads or max(1, cores // local_processes)


def launch_params(section: str, path: str | Path = "params.yaml") -> tuple[int, int]:
    """``(processes, threads)`` of a params.yaml section, read without importing torch (the stage validates it)."""
    values = (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get(section) or {}
    return int(values.get("processes", 1)), int(values.get("threads", 0))


def torchrun_command(module: str, argv: list[str], processes: int) -> list[str]:
    """The command that runs ``python -m module argv`` as ``processes`` data-parallel ranks on this machine."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(processes),
        "-m",
        module,
        *argv,
    ]


def relaunch(module: str, argv: list[str], processes: int, threads: int) -> int:
    """Run ``module`` under torchrun with ``processes`` ranks and ``threads`` per rank (0 = cores / processes).

    Returns torchrun's exit status (non-zero when any rank failed).
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_process(threads, cores(), processes))}
    return subprocess.run(torchrun_command(module, argv, processes), env=env, check=False).returncode
