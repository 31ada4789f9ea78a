import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from skillcall.dataset import (
    CollectParams,
    Row,
    assign_splits,
    collect,
    dedupe,
    drop_held_out,
    hand_pairs,
    normalise,
    parse_rejections,
    skeleton,
    split,
    train_examples,
    write_jsonl,
)
from skillcall.examples import ExampleError, Pair, load_skills, read_example_file
from skillcall.generate import write_generated
from skillcall.params import ParamsError, load_params

REPO = Path(__file__).resolve().parents[1]
PARAMS = CollectParams(seed=0, val_fraction=0.2, test_fraction=0.2)


def _skill_file(path: Path, signature: str, pairs: list[tuple[str, str]]) -> None:
    body = "".join(f"### User: {u}\n### Assistant: {a}\n\n" for u, a in pairs)
    path.write_text(f"#### Prompt:\n{signature} description.\n\n#### Examples:\n\n{body}")


CITIES = ["Oslo", "Paris", "Rome", "Lima", "Kyiv", "Doha", "Bern", "Riga", "Baku", "Oran"]
SHAPES = [  # ten distinct weather templates: ten groups
    "weather in {}",
    "is it raining in {}",
    "how cold is it in {}",
    "forecast for {} please",
    "do I need a coat in {}",
    "will it snow in {}",
    "how hot is {} today",
    "is it sunny in {} right now",
    "what's the wind like in {}",
    "temperature in {} tonight",
]


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    """weather: ten templates x one city each; other: twenty one-off remarks."""
    d = tmp_path / "examples"
    d.mkdir()
    pairs = [(s.format(c), f"weather(location='{c}')") for s, c in zip(SHAPES, CITIES, strict=True)]
    _skill_file(d / "weather.txt", 'weather(location="[location]")', pairs)
    words = "apple river candle violin meadow pepper saddle lantern marble thunder".split()
    remarks = [f"my {a} is next to the {b}" for a, b in zip(words, words[1:] + words[:1], strict=True)]
    remarks += [f"i never liked {w} much" for w in words]
    _skill_file(d / "other.txt", "other()", [(r, "other()") for r in remarks])
    return d


def test_normalise():
    assert normalise("  Um, what's the WEATHER?! ") == "um whats the weather"


def test_skeleton_masks_values_numbers_and_decorations():
    assert skeleton("Alexa, could you tell me the weather in New York?", "weather(location='New York')") == (
        "tell me the weather in X"
    )
    assert skeleton("timer for 2 hours", "timer(duration='2 hours')") == skeleton(
        "um timer for twenty five minutes", "timer(duration='25 minutes')"
    )
    assert skeleton("who wrote hamlet", "openai(prompt='who wrote hamlet')") == "who wrote hamlet"  # content kept


def test_determinism_stratification_and_origins(example_dir, tmp_path):
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
    assert stats["origins"] == {"train": 18, "val": 6, "test": 6}
    assert all(r.origin == r.file for rows in a.values() for r in rows)
    c, _ = collect(example_dir, None, None, skills, CollectParams(seed=1, val_fraction=0.2, test_fraction=0.2))
    assert [r.user for r in c["test"]] != [r.user for r in a["test"]]


def test_near_duplicate_hand_examples_share_a_split(tmp_path):
    """The old fixture: ten slot-swaps of one template. A per-utterance split put the template in every split
    (a leak); grouped by skeleton it lands in one, whole."""
    d = tmp_path / "examples"
    d.mkdir()
    _skill_file(
        d / "weather.txt",
        'weather(location="[location]")',
        [(f"weather in {c}", f"weather(location='{c}')") for c in CITIES],
    )
    _skill_file(d / "other.txt", "other()", [(f"uh, {s}", "other()") for s in ("hi", "bye", "yes", "no", "why")])
    splits, _ = collect(d, None, None, load_skills(d), PARAMS)
    weather = {name for name, rows in splits.items() for r in rows if r.skill == "weather"}
    assert weather == {"train"}  # ten rows of one group fit neither a 2-row val nor a 2-row test
    assignment = assign_splits(
        [Pair(f"weather in {c}", f'weather(location="{c}")', "weather", f"w:{i}") for i, c in enumerate(CITIES)],
        0,
        0.5,
        0.5,
    )
    assert len(set(assignment.values())) == 1


WORDS = "apple river stone cloud piano lemon tiger candle garden rocket violin marble forest pepper island window"
WORDS += " saddle helmet bottle ladder mirror pillow carpet button wallet jacket basket anchor castle dragon falcon"
WORDS += " harbor meadow puzzle rabbit silver temple thunder valley walrus zipper blanket compass dolphin engine"
WORDS += " feather glacier hammock iceberg jungle"


def test_adding_examples_keeps_the_split_of_the_old_ones():
    """50 groups where there were 40: the old examples keep their splits but for a few at the room boundaries
    (a reshuffle would move about half of them), and none leaves test for train."""
    pairs = [Pair(f"tell me about the {w}", "other()", "other", f"o.txt:{i}") for i, w in enumerate(WORDS.split())]
    before, after = assign_splits(pairs[:40], 0, 0.1, 0.2), assign_splits(pairs, 0, 0.1, 0.2)
    moved = {o: (before[o], after[o]) for o in before if before[o] != after[o]}
    assert Counter(after.values()) == {"train": 35, "test": 10, "val": 5}
    assert len(moved) <= 4, moved
    assert ("test", "train") not in moved.values()


def _generated(gen: Path, skill: str, pairs: list[tuple[str, str, str]]) -> None:
    """A generated file written by the generate stage's writer, with origins."""
    spec = load_skills(gen.parent / "examples")[skill]
    made = [Pair(u, a, skill, origin=o) for u, a, o in pairs]
    write_generated(gen, spec, made, {"source": "augmented"})


def test_every_pair_accounted_for_and_generated_rows_follow_their_origin(example_dir, tmp_path):
    gen = tmp_path / "generated"
    skills = load_skills(example_dir)
    assignment = assign_splits([p for p in hand_pairs(example_dir, skills)], 0, 0.2, 0.2)
    train_origin = next(o for o, s in assignment.items() if s == "train" and "weather" in o)
    _generated(
        gen,
        "weather",
        [
            ("Weather in OSLO!", 'weather(location="Oslo")', train_origin),  # duplicate of a hand pair
            ("weather in Tokyo", 'weather(location="Tokyo")', train_origin),
            ("my apple is next to the river", "weather()", train_origin),  # contradicts a hand pair
            ("weather in Cairo", 'weather(location="Cairo")', train_origin),
            ("grammar weather", "weather()", "augment.yaml:other.chatter"),
        ],
    )
    rejected = tmp_path / "rejected.txt"
    rejected.write_text("# comment\nweather: weather in cairo\nmy river is next to the candle\n")
    splits, stats = collect(example_dir, gen, rejected, skills, PARAMS)
    assert stats["read"] == 35
    assert (stats["duplicates"], stats["rejected"], stats["conflicts"], stats["kept"]) == (1, 2, 1, 31)
    assert stats["read"] == stats["kept"] + stats["duplicates"] + stats["rejected"] + stats["conflicts"]
    assert sum(stats["splits"].values()) == stats["kept"]
    assert stats["per_source"] == {"augmented": 2, "hand": 29}
    generated = [r for r in splits["train"] if r.source == "augmented"]
    assert {(r.user, r.origin) for r in generated} == {
        ("weather in Tokyo", train_origin),
        ("grammar weather", "augment.yaml:other.chatter"),
    }
    for name, rows in splits.items():
        assert all(assignment.get(r.origin, "train") == name for r in rows)


def test_generated_rows_from_held_out_or_unknown_origins_are_errors(example_dir, tmp_path):
    skills = load_skills(example_dir)
    assignment = assign_splits(hand_pairs(example_dir, skills), 0, 0.2, 0.2)
    test_origin = next(o for o, s in assignment.items() if s == "test" and "weather" in o)
    for origin, message in ((test_origin, "a test example"), ("examples/gone.txt:3", "is no hand example")):
        gen = tmp_path / origin.replace("/", "_")
        _generated(gen, "weather", [("weather in Tokyo", 'weather(location="Tokyo")', origin)])
        with pytest.raises(ExampleError, match=message):
            collect(example_dir, gen, None, skills, PARAMS)
    (gen / "weather.origins.jsonl").unlink()
    with pytest.raises(ExampleError, match=r"weather.txt:1: no weather.origins.jsonl beside it"):
        collect(example_dir, gen, None, skills, PARAMS)


def test_generate_builds_only_on_train_examples_and_drops_held_out_skeletons(example_dir):
    skills = load_skills(example_dir)
    hand = read_example_file(example_dir / "weather.txt", skills)
    assignment = assign_splits(hand.pairs, 0, 0.2, 0.2)
    train = train_examples(hand, assignment)
    assert {p.file for p in train.pairs} == {o for o, s in assignment.items() if s == "train"}
    held = [p for p in hand.pairs if assignment[p.file] != "train"]
    copy = Pair(
        "uh " + held[0].user.replace(held[0].answer.split('"')[1], "Tokyo"), 'weather(location="Tokyo")', "weather"
    )
    kept, dropped = drop_held_out([copy, *train.pairs], held)
    assert (kept, dropped) == (train.pairs, 1)


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
    pairs = [Pair(f"remark {w}", "other()", "other", f"o:{w}") for w in ("alpha", "beta")]
    rows = [Row(p.user, p.answer, p.skill, "hand", p.file, p.file) for p in pairs]
    parts = split(rows, assign_splits(pairs, 0, 0.1, 0.15), 0)
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
    # the stage's DVC metric: flat and small (one `dvc exp show` column per key), the rest stays in stats.json
    assert json.loads((out / "metrics.json").read_text()) == {"train_rows": 18, "val_rows": 6, "test_rows": 6}
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert set(rows[0]) == {"user", "answer", "skill", "source", "file", "origin"}
    assert Counter(r["skill"] for r in rows) == {"other": 12, "weather": 6}


def test_collect_stage_cli_names_a_bad_byte_without_traceback(example_dir, tmp_path):
    (tmp_path / "params.yaml").write_text("collect:\n  seed: 0\n  val_fraction: 0.2\n  test_fraction: 0.2\n")
    weather = example_dir / "weather.txt"
    weather.write_bytes(weather.read_bytes().replace(b"weather in Oslo", b"weather in Osl\xe9"))
    cmd = [sys.executable, "-m", "stages.collect", str(example_dir), "nope", "nope.txt", "out", "--no-wandb"]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"collect: error: {weather}:6:" in proc.stderr and "not UTF-8" in proc.stderr
