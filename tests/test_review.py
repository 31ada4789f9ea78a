"""The review CLI: piped answers, rejections appended for collect, already rejected pairs skipped."""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from skillcall.dataset import CollectParams, collect
from skillcall.examples import Pair, load_skills
from skillcall.generate import write_generated

REPO = Path(__file__).resolve().parents[1]
GENERATED = ["how cold is it in Oslo", "weather in Lima please", "is it sunny in Rome", "uh forecast for Kyiv"]


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    examples, generated = tmp_path / "examples", tmp_path / "generated"
    examples.mkdir()
    (examples / "weather.txt").write_text(
        '#### Prompt:\nweather(location="[location]") the weather.\n\n#### Examples:\n\n'
        '### User: weather in Paris\n### Assistant: weather(location="Paris")\n'
    )
    (examples / "other.txt").write_text(
        "#### Prompt:\nother() not a request.\n\n#### Examples:\n\n### User: hi\n### Assistant: other()\n"
    )
    rejected = examples / "rejected.txt"
    rejected.write_text("# rejected examples\nweather: uh forecast for Kyiv")  # no final newline
    skill = load_skills(examples)["weather"]
    pairs = [
        Pair(u, f'weather(location="{u.split()[-1] if u != GENERATED[1] else "Lima"}")', "weather") for u in GENERATED
    ]
    write_generated(generated, skill, [replace(p, origin="augment.yaml:test") for p in pairs], {"source": "augmented"})
    return examples, generated, rejected


def review(examples: Path, generated: Path, rejected: Path, answers: str) -> subprocess.CompletedProcess:
    args = ["weather", "--generated-dir", str(generated), "--rejected", str(rejected), "--examples-dir", str(examples)]
    return subprocess.run(
        [sys.executable, "-m", "skillcall.review", *args],
        input=answers,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_review_appends_rejections_and_collect_drops_them(tmp_path):
    examples, generated, rejected = setup(tmp_path)
    proc = review(examples, generated, rejected, "y\nn\nq\n")
    assert proc.returncode == 0, proc.stderr
    assert "[1/3] how cold is it in Oslo" in proc.stdout and 'weather(location="Oslo")' in proc.stdout
    assert "kept 1, rejected 1, not reviewed 1" in proc.stdout
    assert rejected.read_text().splitlines() == [
        "# rejected examples",
        "weather: uh forecast for Kyiv",
        "weather: weather in Lima please",
    ]

    again = review(examples, generated, rejected, "maybe\n\n")  # a bad answer is asked again; EOF stops
    assert "[1/2] how cold is it in Oslo" in again.stdout and "please answer y" in again.stdout
    assert "Lima" not in again.stdout and rejected.read_text().count("\n") == 3

    skills = load_skills(examples)
    splits, stats = collect(
        examples, generated, rejected, skills, CollectParams(seed=0, val_fraction=0.0, test_fraction=0.0)
    )
    users = {row.user for rows in splits.values() for row in rows}
    assert stats["rejected"] == 2
    assert users == {"weather in Paris", "hi", "how cold is it in Oslo", "is it sunny in Rome"}


def test_review_without_generated_file_says_what_to_run(tmp_path):
    examples, generated, rejected = setup(tmp_path)
    (generated / "weather.txt").unlink()
    proc = review(examples, generated, rejected, "")
    assert proc.returncode != 0 and "dvc repro generate@weather" in proc.stderr
