"""Collect hand + generated examples into a deduplicated dataset, split by origin.

The split is decided on the hand examples before anything is generated from them (:func:`assign_splits`):
hand examples with the same skeleton (the utterance with argument values, numbers, fillers, wake words and
politeness masked) form one group, groups are dealt to test / val / train per skill (seeded), and a generated
row inherits the split of the hand example it was made from (its ``origin``). The generate stage augments only
train-split examples, so no origin and no skeleton of val or test is ever seen in training.

>>> normalise("Um, what's the Weather?!")
'um whats the weather'
>>> skeleton("Alexa, um could you set a timer for twenty five minutes please", 'timer(duration="25 minutes")')
'set a timer for N T'
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from skillcall.calls import parse_call
from skillcall.examples import ExampleError, ExampleFile, Pair, example_paths, read_example_file, read_pairs_file
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
    origin: str = ""  # the hand example ("examples/weather.txt:12") or template this row descends from


TRAIN_ONLY_ORIGINS = ("openai:", "augment.yaml:")  # a request that saw many hand examples; the other() grammar
ORIGINS_SUFFIX = ".origins.jsonl"  # beside each generated file: {"user", "origin"} per pair, in order


def origins_path(generated_file: str | Path) -> Path:
    """``data/generated/weather.txt`` -> ``data/generated/weather.origins.jsonl``."""
    path = Path(generated_file)
    return path.with_name(path.stem + ORIGINS_SUFFIX)


def normalise(utterance: str) -> str:
    """Lower case, no punctuation, single spaces: the key for dedupe and leakage."""
    return " ".join(re.sub(r"[^\w\s]", "", utterance.lower()).split())


_NUMBER = (
    r"\d+(?:\.\d+)?|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|"
    r"thousand|half|quarter"
)
_NOISE = (  # words that decorate a request without changing it: fillers, wake words, politeness
    r"um+|uh+|er+|erm|hmm+|ah|oh|so|well|okay|ok|hey|hi|alexa|computer|assistant|please|just|thanks|thank you|"
    r"(?:can|could|would|will) you|i said"
)


SLOT_WORDS = 4  # values of up to 4 words and half the utterance are slots (masked); longer ones are its content


def skeleton(utterance: str, answer: str) -> str:
    """The utterance with its short argument values masked (``X``), numbers masked (``N``) and decorations
    removed: two hand examples with one skeleton are near-duplicates and must share a split.

    >>> skeleton("what's the weather in New York?", 'weather(location="New York")')
    'whats the weather in X'
    >>> skeleton("hey explain how rainbows form", 'openai(prompt="explain how rainbows form")')
    'explain how rainbows form'
    """
    text = _numbers(normalise(utterance))
    values = {_numbers(normalise(v)) for _, v in parse_call(answer).args} - {"N", "N T"}
    size = len(text.split())
    for value in sorted((v for v in values if 0 < len(v.split()) <= min(SLOT_WORDS, size / 2)), key=len, reverse=True):
        text = re.sub(rf"\b{re.escape(value)}\b", " X ", text)
    return " ".join(re.sub(rf"\b(?:{_NOISE})\b", " ", text).split())


def _numbers(text: str) -> str:
    """Numbers (digits or words) -> ``N``, a number and a time unit -> ``N T``."""
    text = re.sub(rf"\b(?:{_NUMBER})\b", " N ", text)
    text = re.sub(r"\bN(?:\s+(?:and\s+a\s+|and\s+|a\s+)?N)+\b", "N", " ".join(text.split()))
    return re.sub(r"\bN (?:hours?|minutes?|mins?|seconds?|secs?)\b", "N T", text)  # T: any time unit


def spread(rows: list, n: int) -> list:
    """``n`` rows spread evenly over ``rows`` (all of them when ``n`` is 0 or too large): a fixed subset, such as
    the val rows of finetune's loss curve or the rows eval's baseline runs on.

    >>> spread(list("abcdefgh"), 3)
    ['a', 'c', 'f']
    """
    return rows if not n or n >= len(rows) else [rows[i * len(rows) // n] for i in range(n)]


def assign_splits(pairs: list[Pair], seed: int, val_fraction: float, test_fraction: float) -> dict[str, str]:
    """``{origin: split}`` for hand pairs (origin = ``pair.file``): groups of one skeleton, dealt per skill in a
    seeded order to test while it has room (``test_fraction`` of the skill's pairs), else val, else train.

    The order is a seeded hash of each skeleton, so a group's place does not depend on the other groups: adding
    examples moves at most a few groups at the room boundaries, instead of redealing every split (which would put
    old test rows into train and make runs on two versions of the examples incomparable).

    >>> ps = [Pair(u, "other()", "other", f"o.txt:{i}") for i, u in enumerate(["hi", "um hi", "bye", "ok then"])]
    >>> s = assign_splits(ps, 0, 0.25, 0.25)
    >>> s["o.txt:0"] == s["o.txt:1"], sorted(s.values())
    (True, ['test', 'train', 'train', 'val'])
    """
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for pair in pairs:
        groups[pair.skill][skeleton(pair.user, pair.answer)].append(pair.file)
    out: dict[str, str] = {}
    for skill in sorted(groups):
        keys = sorted(groups[skill], key=lambda k: hashlib.sha256(f"{seed}:{skill}:{k}".encode()).digest())
        total = sum(len(v) for v in groups[skill].values())
        room = {"test": round(total * test_fraction), "val": round(total * val_fraction)}
        for key in keys:
            size = len(groups[skill][key])
            name = next((s for s in ("test", "val") if size <= room[s]), "train")  # a group never overfills one
            room[name] = room.get(name, 0) - size
            out |= {origin: name for origin in groups[skill][key]}
    return out


def hand_pairs(examples_dir: str | Path, skills: Skills) -> list[Pair]:
    """Every hand pair in a fixed order: ``examples/*.txt``, then otto JSONL imports (``examples/*.jsonl``)."""
    pairs = [p for path in example_paths(examples_dir) for p in read_example_file(path, skills).pairs]
    for path in sorted(Path(examples_dir).glob("*.jsonl")):
        pairs += read_pairs_file(path, skills)[0]
    return pairs


def read_origins(generated_file: Path, pairs: list[Pair]) -> list[str]:
    """The origin of each generated pair, from the file beside it; a missing or mismatching one is an error."""
    path = origins_path(generated_file)
    if not path.exists():
        raise ExampleError(f"{generated_file}:1", f"no {path.name} beside it: rerun the generate stage")
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, (pair, record) in enumerate(zip(pairs, records, strict=False)):
        if record.get("user") != pair.user or not record.get("origin"):
            raise ExampleError(f"{path}:{i + 1}", f"does not match {pair.file} ({pair.user!r}): rerun generate")
    if len(records) != len(pairs):
        raise ExampleError(f"{path}:1", f"{len(records)} origins for {len(pairs)} pairs in {generated_file}")
    return [r["origin"] for r in records]


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
    """Every pair, in a fixed order: hand pairs (:func:`hand_pairs`, their own origin), then generated files
    (each with its report, for the source, and its origins file)."""
    rows = [Row(p.user, p.answer, p.skill, "hand", p.file, p.file) for p in hand_pairs(examples_dir, skills)]
    if generated_dir and Path(generated_dir).is_dir():
        for path in example_paths(generated_dir):
            report = path.with_suffix(".report.json")
            if not report.exists():
                raise ExampleError(f"{path}:1", f"no {report.name} beside it: rerun the generate stage")
            source = json.loads(report.read_text())["source"]
            pairs = read_example_file(path, skills).pairs
            origins = read_origins(path, pairs)
            rows += [Row(p.user, p.answer, p.skill, source, p.file, o) for p, o in zip(pairs, origins, strict=True)]
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


def split(rows: list[Row], assignment: dict[str, str], seed: int) -> dict[str, list[Row]]:
    """Each row goes to its origin's split (:func:`assign_splits`); generated rows may descend only from train
    origins or from train-only ones (an openai request, the other() grammar). Each split is shuffled (seeded)."""
    out: dict[str, list[Row]] = {s: [] for s in SPLITS}
    for row in rows:
        if row.origin.startswith(TRAIN_ONLY_ORIGINS):
            name = "train"
        elif row.origin not in assignment:
            raise ExampleError(row.file, f"origin {row.origin!r} is no hand example: rerun the generate stage")
        else:
            name = assignment[row.origin]
        if row.source != "hand" and name != "train":
            raise ExampleError(row.file, f"generated from {row.origin}, a {name} example: rerun the generate stage")
        out[name].append(row)
    for name in SPLITS:
        out[name].sort(key=lambda r: normalise(r.user))
        random.Random(f"{seed}:{name}").shuffle(out[name])
    return out


def drop_held_out(pairs: list[Pair], held_out: list[Pair]) -> tuple[list[Pair], int]:
    """``pairs`` without those whose skeleton is a val/test hand example's (a slot value or a rewrite can turn a
    train template into one), and how many were dropped.

    >>> held = [Pair("who wrote hamlet", 'openai(prompt="who wrote hamlet")', "openai")]
    >>> drop_held_out([Pair("um who wrote hamlet", 'openai(prompt="who wrote hamlet")', "openai")], held)
    ([], 1)
    """
    banned = {skeleton(p.user, p.answer) for p in held_out}
    kept = [p for p in pairs if skeleton(p.user, p.answer) not in banned]
    return kept, len(pairs) - len(kept)


def train_examples(hand: ExampleFile, assignment: dict[str, str]) -> ExampleFile:
    """``hand`` with only its train-split pairs: what the generate stage may build on."""
    keep = [p for p in hand.pairs if assignment.get(p.file) == "train"]
    prompt_examples = [p for p in hand.prompt_examples if p in keep]
    return replace(hand, prompt_examples=prompt_examples, examples=[p for p in keep if p not in prompt_examples])


def stats(splits: dict[str, list[Row]], counts: Counter) -> dict:
    """Counts per skill x split and per source; read = kept + duplicates + rejected + conflicts."""
    per_skill: dict[str, dict[str, int]] = defaultdict(lambda: {s: 0 for s in SPLITS})
    per_source: Counter = Counter()
    origins: dict[str, set[str]] = {s: set() for s in SPLITS}
    for name, rows in splits.items():
        for row in rows:
            per_skill[row.skill][name] += 1
            per_source[row.source] += 1
            origins[name].add(row.origin)
    return {
        "read": counts["read"],
        "kept": counts["kept"],
        "duplicates": counts["duplicates"],
        "rejected": counts["rejected"],
        "conflicts": counts["conflicts"],
        "splits": {name: len(rows) for name, rows in splits.items()},
        "origins": {name: len(o) for name, o in origins.items()},
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
    assignment = assign_splits(hand_pairs(examples_dir, skills), p.seed, p.val_fraction, p.test_fraction)
    splits = split(rows, assignment, p.seed)
    return splits, stats(splits, counts)
