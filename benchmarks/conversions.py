"""Unit conversions with and without their reading in the arithmetic hint: how many of 20 the adapter gets right.

    python benchmarks/conversions.py [--adapter models/adapter]

The 135M model knows no unit factors; :func:`skillcall.arithmetic.conversion` gives them in the prompt's
``(math: ...)`` line. Both runs use the same adapter, the grammar and the eval defaults of params.yaml; the run
"without" empties the reader's conversion patterns, so its prompts are what they were before conversions were read.
The 20 questions below were written for this script; they are in no split and in no example file.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import print_table  # noqa: E402

QUESTIONS = {  # utterance -> the math skill's question, in the examples' form
    "how many minutes in three hours": "3*60",
    "how many seconds are in an hour": "60*60",
    "how many days in six weeks": "6*7",
    "how many hours in a week": "7*24",
    "how many weeks is eighty four days": "84/7",
    "how many months in seven years": "7*12",
    "how many seconds in five minutes": "5*60",
    "how many hours is four hundred and twenty minutes": "420/60",
    "how many minutes are there in a week": "7*24*60",
    "how many days are in four weeks": "4*7",
    "hey google how many hours are in two days": "2*24",
    "how many minutes is ninety seconds": "90/60",
    "how many years is sixty months": "60/12",
    "how many seconds in a day": "24*60*60",
    "how many hours in ten days": "10*24",
    "how many inches in six feet": "6*12",
    "how many feet is ninety six inches": "96/12",
    "how many grams in three kilos": "3*1000",
    "how many ounces in four pounds": "4*16",
    "how many centimetres in two metres": "2*100",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", default=str(ROOT / "models/adapter"))
    args = ap.parse_args()

    import skillcall.arithmetic
    from skillcall.dataset import Row
    from skillcall.evaluate import EvalParams, evaluate_rows, resolve_target
    from skillcall.grammar import skills_grammar
    from skillcall.models import load_trained, merge_adapter
    from skillcall.params import load_params

    p = replace(load_params("eval", EvalParams, ROOT / "params.yaml"), baseline=False)
    target = resolve_target(args.adapter, None, p)
    model = merge_adapter(load_trained(target.adapter, target.model)[0])
    rows = [Row(u, f'math(question="{q}")', "math", "hand", "benchmarks/conversions.py") for u, q in QUESTIONS.items()]
    patterns, results = skillcall.arithmetic._CONVERSION_PATTERNS, []
    for name, reads in (("without", []), ("with", patterns)):
        skillcall.arithmetic._CONVERSION_PATTERNS = reads
        skillcall.arithmetic._chain.cache_clear()  # it caches readings made with the other patterns
        preds = evaluate_rows(model, target.prompter, rows, target.skills, p, name, skills_grammar(target.skills))
        wrong = [f"{r.user} -> {pr.prediction or pr.raw}" for r, pr in zip(rows, preds, strict=True) if not pr.correct]
        results.append({"conversions read": name, "right": sum(pr.correct for pr in preds), "of": len(rows)})
        print(f"{name}: wrong", *wrong, sep="\n  ", file=sys.stderr)
    print_table(results)


if __name__ == "__main__":
    main()
