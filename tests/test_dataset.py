import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from skillcall.dataset import CollectParams, Row, collect, dedupe, normalise, parse_rejections, split, write_jsonl
from skillcall.examples import ExampleError, load_skills
from skillcall.params import ParamsError, load_params

REPO = Path(__file__).resolve().parents[1]
PARAMS = CollectParams(seed=0, val_fraction=0.2, test_fraction=0.2)


def _skill_file(path: Path, signature: str, pairs: list[tuple[str, str]]) -> None:
    body = "".join(f"### User: {u}\n### Assistant: {a}\n\n" for u, a in pairs)
    path.write_text(f"#### Prompt:\n{signature} description.\n\n#### Examples:\n\n{body}")


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    d = tmp_path / "examples"
    d.mkdir()
    cities = ["Oslo", "Paris", "Rome", "Lima", "Kyiv", "Doha", "Bern", "Riga", "Baku", "Oran"]
    _skill_file(
        d / "weather.txt",
        'weather(location="[location]")',
        [(f"weather in {c}", f"weather(location='{c}')") for c in cities],
    )
    _skill_file(d / "other.txt", "other()", [(f"chatter number {i}", "other()") for i in range(20)])
    return d


def test_normalise():
    assert normalise("  Um, what's the WEATHER?! ") == "um whats the weather"


def test_determinism_stratification_and_no_leakage(example_dir, tmp_path):
    skills = load_skills(example_dir)
    a, stats = collect(example_dir, None, None, skills, PARAMS)
    b, _ = collect(example_dir, None, None, skills, PARAMS)
    for name in a:
        write_jsonl(tmp_path / f"a_{name}.jsonl", a[name])
        write_jsonl(tmp_path / f"b_{name}.jsonl", b[name])
        assert (tmp_path / f"a_{name}.jsonl").read_bytes() == (tmp_path / f"b_{name}.jsonl").read_bytes()
    assert stats["per_skill"] == {
        "other": {"train": 12, "val": 4, "test": 4},
        "weather": {"train": 6, "val": 2, "test": 2},
    }
    seen = [normalise(r.user) for rows in a.values() for r in rows]
    assert len(seen) == len(set(seen)) == 30
    c, _ = collect(example_dir, None, None, skills, CollectParams(seed=1, val_fraction=0.2, test_fraction=0.2))
    assert [r.user for r in c["test"]] != [r.user for r in a["test"]]


def test_every_pair_accounted_for(example_dir, tmp_path):
    gen = tmp_path / "generated"
    gen.mkdir()
    _skill_file(
        gen / "weather.txt",
        'weather(location="[location]")',
        [
            ("Weather in OSLO!", "weather(location='Oslo')"),
            ("weather in Tokyo", "weather(location='Tokyo')"),
            ("chatter number 3", "weather()"),
            ("weather in Cairo", "weather(location='Cairo')"),
        ],
    )
    (gen / "weather.report.json").write_text(json.dumps({"source": "augmented"}))
    rejected = tmp_path / "rejected.txt"
    rejected.write_text("# comment\nweather: weather in cairo\nchatter number 0\n")
    skills = load_skills(example_dir)
    splits, stats = collect(example_dir, gen, rejected, skills, PARAMS)
    assert stats["read"] == 34
    assert (stats["duplicates"], stats["rejected"], stats["conflicts"], stats["kept"]) == (1, 2, 1, 30)
    assert stats["read"] == stats["kept"] + stats["duplicates"] + stats["rejected"] + stats["conflicts"]
    assert sum(stats["splits"].values()) == stats["kept"]
    assert stats["per_source"] == {"augmented": 1, "hand": 29}
    rows = [r for rows in splits.values() for r in rows]
    assert {r.user for r in rows if r.source == "augmented"} == {"weather in Tokyo"}
    assert all(r.file.startswith(str(example_dir)) or r.file.startswith(str(gen)) for r in rows)


def test_conflicting_hand_duplicate_is_an_error(example_dir):
    (example_dir / "other.txt").write_text(
        (example_dir / "other.txt").read_text() + "### User: Weather in Oslo?\n### Assistant: other()\n"
    )
    with pytest.raises(
        ExampleError, match=r"weather.txt:6: conflicting duplicate: .* but .*other.txt:\d+ says other\(\)"
    ):
        collect(example_dir, None, None, load_skills(example_dir), PARAMS)


def test_dedupe_keeps_first():
    rows = [Row("Hi there", "other()", "other", "hand", "a:1"), Row("hi there!", "other()", "other", "hand", "a:5")]
    kept, counts = dedupe(rows, [])
    assert kept == rows[:1] and counts["duplicates"] == 1


def test_split_handles_tiny_skills():
    rows = [Row(f"u{i}", "other()", "other", "hand", "") for i in range(2)]
    parts = split(rows, 0, 0.1, 0.15)
    assert sum(len(v) for v in parts.values()) == 2


def test_rejections_parse(example_dir):
    skills = load_skills(example_dir)
    rej = parse_rejections("weather: Weather in Oslo\nnotes: keep me\n\n# c\n", "r.txt", skills)
    assert [(r.utterance, r.skill) for r in rej] == [("weather in oslo", "weather"), ("notes keep me", None)]


def test_params_are_strict(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("collect:\n  seed: 0\n  val_fraction: 0.1\n  test_fraction: 0.1\n")
    assert load_params("collect", CollectParams, p) == CollectParams(0, 0.1, 0.1)
    p.write_text("collect:\n  seed: 0\n  val_fraction: 0.1\n  test_fraction: 0.1\n  typo: 1\n")
    with pytest.raises(ParamsError, match="unknown key.*typo"):
        load_params("collect", CollectParams, p)
    p.write_text("collect:\n  seed: 0\n  val_fraction: 0.1\n")
    with pytest.raises(ParamsError, match="missing key.*test_fraction"):
        load_params("collect", CollectParams, p)
    p.write_text("collect:\n  seed: zero\n  val_fraction: 0.1\n  test_fraction: 0.1\n")
    with pytest.raises(ParamsError, match="collect.seed: expected int"):
        load_params("collect", CollectParams, p)


def test_repo_params_load():
    assert load_params("collect", CollectParams, REPO / "params.yaml")


def test_collect_stage_cli_writes_splits_and_stats(example_dir, tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text("collect:\n  seed: 0\n  val_fraction: 0.2\n  test_fraction: 0.2\n")
    out = tmp_path / "dataset"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "stages.collect",
        str(example_dir),
        str(tmp_path / "nope"),
        str(tmp_path / "nope.txt"),
        str(out),
        "--no-wandb",  # W&B logging is tested in test_lineage.py
    ]
    subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["splits"] == {"train": 18, "val": 6, "test": 6}
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert set(rows[0]) == {"user", "answer", "skill", "source", "file"}
    assert Counter(r["skill"] for r in rows) == {"other": 12, "weather": 6}
