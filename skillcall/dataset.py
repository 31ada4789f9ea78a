"""Collect hand + generated examples into a deduplicated, stratified, leak-free split.

>>> normalise("Um, what's the Weather?!")
'um whats the weather'
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from skillcall.examples import ExampleError, example_paths, read_example_file, read_pairs_file
from skillcall.skills import Skills

SPLITS = ("train", "val", "test")


@dataclass
class CollectParams:
    seed: int
    val_fraction: float
    test_fraction: float


@dataclass(frozen=True)
class Row:
    user: str
    answer: str
    skill: str
    source: str  # "hand" | "generated" | "augmented"
    file: str


def normalise(utterance: str) -> str:
    """Lower case, no punctuation, single spaces: the key for dedupe and leakage."""
    return " ".join(re.sub(r"[^\w\s]", "", utterance.lower()).split())


@dataclass(frozen=True)
class Rejection:
    utterance: str  # normalised
    skill: str | None  # None: reject in every skill
    where: str


def parse_rejections(text: str, path: str, skills: Skills) -> list[Rejection]:
    """One per line: ``utterance`` or ``skill: utterance``; ``#`` starts a comment line."""
    out = []
    for i, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, sep, rest = line.partition(":")
        skill = head.strip() if sep and head.strip() in skills else None
        utterance = normalise(rest if skill else line)
        if not utterance:
            raise ExampleError(f"{path}:{i + 1}", "empty rejection; expected 'utterance' or 'skill: utterance'")
        out.append(Rejection(utterance, skill, f"{path}:{i + 1}"))
    return out


def read_sources(examples_dir: str | Path, generated_dir: str | Path | None, skills: Skills) -> list[Row]:
    """Every pair, in a fixed order: hand files, otto JSONL imports (``examples/*.jsonl``), generated files."""
    rows = []
    for path in example_paths(examples_dir):
        rows += [Row(p.user, p.answer, p.skill, "hand", p.file) for p in read_example_file(path, skills).pairs]
    for path in sorted(Path(examples_dir).glob("*.jsonl")):
        rows += [Row(p.user, p.answer, p.skill, "hand", p.file) for p in read_pairs_file(path, skills)[0]]
    if generated_dir and Path(generated_dir).is_dir():
        for path in example_paths(generated_dir):
            report = path.with_suffix(".report.json")
            source = json.loads(report.read_text())["source"] if report.exists() else "generated"
            rows += [Row(p.user, p.answer, p.skill, source, p.file) for p in read_example_file(path, skills).pairs]
    return rows


def dedupe(rows: list[Row], rejections: list[Rejection]) -> tuple[list[Row], Counter]:
    """Drop rejected rows and repeats of a normalised utterance (first one wins; hand rows come first).

    A hand pair repeating an utterance with a different answer is an error naming both places;
    a generated pair that contradicts an earlier pair is dropped and counted as a conflict.
    """
    kept: dict[str, Row] = {}
    counts: Counter = Counter(read=len(rows))
    for row in rows:
        key = normalise(row.user)
        if any(r.utterance == key and r.skill in (None, row.skill) for r in rejections):
            counts["rejected"] += 1
        elif key in kept and kept[key].answer != row.answer:
            first = kept[key]
            if row.source == "hand":
                raise ExampleError(
                    row.file,
                    f"conflicting duplicate: {row.user!r} -> {row.answer} but {first.file} says {first.answer}",
                )
            counts["conflicts"] += 1  # a generated pair contradicting an earlier one: the earlier one wins
        elif key in kept:
            counts["duplicates"] += 1
        else:
            kept[key] = row
    counts["kept"] = len(kept)
    return list(kept.values()), counts


def split(rows: list[Row], seed: int, val_fraction: float, test_fraction: float) -> dict[str, list[Row]]:
    """Seeded split stratified by skill. Rows must be deduplicated, so no utterance is in two splits."""
    by_skill: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_skill[row.skill].append(row)
    out: dict[str, list[Row]] = {s: [] for s in SPLITS}
    for skill in sorted(by_skill):
        group = sorted(by_skill[skill], key=lambda r: normalise(r.user))
        random.Random(f"{seed}:{skill}").shuffle(group)
        n_test, n_val = round(len(group) * test_fraction), round(len(group) * val_fraction)
        out["test"] += group[:n_test]
        out["val"] += group[n_test : n_test + n_val]
        out["train"] += group[n_test + n_val :]
    for name in SPLITS:
        random.Random(f"{seed}:{name}").shuffle(out[name])
    return out


def stats(splits: dict[str, list[Row]], counts: Counter) -> dict:
    """Counts per skill x split and per source; read = kept + duplicates + rejected + conflicts."""
    per_skill: dict[str, dict[str, int]] = defaultdict(lambda: {s: 0 for s in SPLITS})
    per_source: Counter = Counter()
    for name, rows in splits.items():
        for row in rows:
            per_skill[row.skill][name] += 1
            per_source[row.source] += 1
    return {
        "read": counts["read"],
        "kept": counts["kept"],
        "duplicates": counts["duplicates"],
        "rejected": counts["rejected"],
        "conflicts": counts["conflicts"],
        "splits": {name: len(rows) for name, rows in splits.items()},
        "per_skill": {k: per_skill[k] for k in sorted(per_skill)},
        "per_source": dict(sorted(per_source.items())),
    }


def write_jsonl(path: str | Path, rows: list) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(asdict(row) if not isinstance(row, dict) else row, ensure_ascii=False) + "\n")


def read_rows(path: str | Path) -> list[Row]:
    with open(path, encoding="utf-8") as f:
        return [Row(**json.loads(line)) for line in f if line.strip()]


def collect(
    examples_dir: str | Path,
    generated_dir: str | Path | None,
    rejected: str | Path | None,
    skills: Skills,
    p: CollectParams,
) -> tuple[dict[str, list[Row]], dict]:
    """The whole collect stage, minus writing: returns (splits, stats)."""
    rejections = []
    if rejected and Path(rejected).exists():
        rejections = parse_rejections(Path(rejected).read_text(encoding="utf-8"), str(rejected), skills)
    rows, counts = dedupe(read_sources(examples_dir, generated_dir, skills), rejections)
    splits = split(rows, p.seed, p.val_fraction, p.test_fraction)
    return splits, stats(splits, counts)
