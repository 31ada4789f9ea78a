"""What constrained decoding costs and buys in the HF engine: the test split with and without the skills' grammar.

    python benchmarks/grammar_overhead.py --adapter models/adapter --dataset data/dataset [--limit N] [--repeat 2]
    python benchmarks/grammar_overhead.py --model models/export/skillcall-f16.gguf --dataset data/dataset

Prints, per setting, AST accuracy, valid rate, latency p50/p95 (ms per utterance, the eval stage's measure), wall
seconds, generated tokens, and ms per generated token; then the overhead of the grammar (wall time, and per
token: constrained answers can be shorter or longer). Settings alternate, ``--repeat`` times, to even out noise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skillcall.evaluate import EvalParams, compute_metrics, evaluate_rows, read_split  # noqa: E402
from skillcall.grammar import skills_grammar  # noqa: E402
from skillcall.models import load_trained, merge_adapter  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", default="models/adapter")
    ap.add_argument("--model", help="a merged export (folder or .gguf) instead of the adapter")
    ap.add_argument("--dataset", default="data/dataset")
    ap.add_argument("--limit", type=int, default=0, help="first N test utterances (0: all)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)

    model, prompter, skills = load_trained(args.model or args.adapter)
    model = merge_adapter(model)
    rows = read_split(args.dataset, "test")
    rows = rows[: args.limit] if args.limit else rows
    p = EvalParams(batch_size=args.batch_size, max_new_tokens=48, baseline=False, split="test")
    grammar = skills_grammar(skills)
    totals: dict[str, list] = {"unconstrained": [], "constrained": []}
    for _ in range(args.repeat):
        for name, g in (("unconstrained", None), ("constrained", grammar)):
            began = time.perf_counter()
            preds = evaluate_rows(model, prompter, rows, skills, p, None, g)
            seconds = time.perf_counter() - began
            tokens = sum(len(prompter.tokenizer(x.raw, add_special_tokens=False)["input_ids"]) + 1 for x in preds)
            m = compute_metrics(preds)
            totals[name].append((seconds, tokens))
            print(
                f"{name:>13}: ast {m['ast_accuracy']:.3f} valid {m['valid_rate']:.3f} "
                f"p50 {m['latency_ms_p50']:.1f} ms p95 {m['latency_ms_p95']:.1f} ms, {seconds:.1f} s, "
                f"{tokens} tokens, {1000 * seconds / tokens:.1f} ms/token, n {m['n']}",
                flush=True,
            )
    (su, tu), (sc, tc) = ([sum(x) for x in zip(*totals[k], strict=True)] for k in ("unconstrained", "constrained"))
    print(f"overhead: wall {100 * (sc / su - 1):+.1f}%, per token {100 * ((sc / tc) / (su / tu) - 1):+.1f}%")


if __name__ == "__main__":
    main()
