"""What the comparison benchmarks share: time training steps, run one configuration in a child process, print
rows as markdown.

>>> print_table([{"processes": 1, "s/step": 8.2}, {"processes": 2, "s/step": 9.0}])
| processes | s/step |
|---|---|
| 1 | 8.2 |
| 2 | 9.0 |
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


def run_json(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd`` (a benchmark's ``--one`` child) and return the JSON object on its last stdout line."""
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=cwd).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_table(rows: list[dict]) -> None:
    """Rows (same keys) as a markdown table, columns in the first row's key order."""
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


def step_timer() -> tuple[object, list[float]]:
    """A transformers TrainerCallback that appends each optimizer step's seconds to the returned list."""
    import time

    from transformers import TrainerCallback

    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    return StepTimer(), times
