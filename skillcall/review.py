"""Review generated examples one by one; rejected ones go to the git-tracked rejection list that collect honours.

    python -m skillcall.review weather [--generated-dir data/generated] [--rejected examples/rejected.txt]

For each generated pair not yet rejected it prints ``utterance -> call`` and reads one line:
Enter or ``y`` keeps it, ``n`` appends ``weather: utterance`` to the rejection list, ``q`` stops.
Works with piped stdin: ``printf 'y\\nn\\nq\\n' | python -m skillcall.review weather``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from skillcall.dataset import normalise, parse_rejections
from skillcall.examples import Pair, load_skills, read_example_file

KEEP, REJECT, QUIT = ("", "y", "yes"), ("n", "no"), ("q", "quit")


def pending(pairs: list[Pair], rejected_text: str, rejected_path: str, skills: dict) -> list[Pair]:
    """The pairs not already rejected (for their skill or for every skill)."""
    done = {(r.utterance, r.skill) for r in parse_rejections(rejected_text, rejected_path, skills)}
    return [p for p in pairs if (normalise(p.user), None) not in done and (normalise(p.user), p.skill) not in done]


def review(pairs: list[Pair], rejected: Path, answers: TextIO, out: TextIO) -> tuple[int, int]:
    """Ask about each pair; append each rejection to ``rejected`` at once. Returns (kept, rejected) counts."""
    kept = dropped = 0
    for i, pair in enumerate(pairs, 1):
        while True:
            out.write(f"[{i}/{len(pairs)}] {pair.user}\n    -> {pair.answer}\nkeep? [Y/n/q] ")
            out.flush()
            line = answers.readline()
            answer = line.strip().lower()
            if not line or answer in QUIT:
                return kept, dropped
            if answer in KEEP or answer in REJECT:
                break
            out.write("please answer y (or Enter), n or q\n")
        if answer in REJECT:
            text = rejected.read_text(encoding="utf-8") if rejected.exists() else ""
            with rejected.open("a", encoding="utf-8") as f:
                f.write(("" if not text or text.endswith("\n") else "\n") + f"{pair.skill}: {pair.user}\n")
            dropped += 1
        else:
            kept += 1
    return kept, dropped


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m skillcall.review", description=__doc__.split("\n")[0])
    ap.add_argument("skill")
    ap.add_argument("--generated-dir", default="data/generated")
    ap.add_argument("--rejected", default="examples/rejected.txt")
    ap.add_argument("--examples-dir", default="examples", help="the skill files (to read 'skill: ...' rejections)")
    args = ap.parse_args(argv)
    skills = load_skills(args.examples_dir)
    generated = Path(args.generated_dir) / f"{args.skill}.txt"
    if not generated.exists():
        sys.exit(f"{generated}: no generated examples; run `dvc repro generate@{args.skill}` first")
    rejected = Path(args.rejected)
    text = rejected.read_text(encoding="utf-8") if rejected.exists() else ""
    todo = pending(read_example_file(generated, skills).pairs, text, str(rejected), skills)
    kept, dropped = review(todo, rejected, sys.stdin, sys.stdout)
    print(f"\n{args.skill}: kept {kept}, rejected {dropped}, not reviewed {len(todo) - kept - dropped} -> {rejected}")


if __name__ == "__main__":
    main()
