"""What the place hint finds (:func:`skillcall.places.place`) on dataset rows, against each row's call.

    python benchmarks/place_hints.py [data/dataset/train.jsonl data/dataset/val.jsonl ...] [--show]

A row whose call has a ``location`` counts under "as said" when the location's letters are in the utterance
("weather in Oslo"), else under "heard" ("zurick" for Zurich); each is "right" (the hint is the location),
"other place" or "none". Rows without a location count the places named anyway (a news topic's country, or by
chance: "pothos" reads Potosi). ``--show`` prints each miss and each hint on a row without a location.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skillcall.calls import parse_call  # noqa: E402
from skillcall.places import letters, place  # noqa: E402


def tally(rows: list[dict], show: bool = False) -> Counter:
    """Counts of (kind of row, what the hint found) over ``rows`` (``user``/``answer`` dicts)."""
    counts: Counter = Counter()
    for row in rows:
        location = dict(parse_call(row["answer"]).args).get("location")
        hint = place(row["user"])
        if location is None:
            counts["no location", "a place named" if hint else "none"] += 1
            if hint and show:
                print(f"named  {row['user']!r}: {hint}")
            continue
        said = "as said" if letters(location) in letters(row["user"]) else "heard"
        found = "right" if hint == location else "none" if hint is None else "other place"
        counts[said, found] += 1
        if found != "right" and show:
            print(f"{found:<6} {row['user']!r}: {hint} for {location}")
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", default=["data/dataset/train.jsonl", "data/dataset/val.jsonl"])
    ap.add_argument("--show", action="store_true", help="print each miss and each place named without a location")
    args = ap.parse_args()
    rows = [json.loads(line) for f in args.files for line in Path(f).read_text().splitlines() if line.strip()]
    counts = tally(rows, args.show)
    print(f"{len(rows)} rows of {', '.join(args.files)}")
    print(f"{'rows':<12} {'hint':<14} {'count':>6}")
    for (kind, found), n in sorted(counts.items()):
        print(f"{kind:<12} {found:<14} {n:>6}")


if __name__ == "__main__":
    main()
