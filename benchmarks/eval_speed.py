"""Eval generation speed: one ``generate`` per utterance (the seed's way) vs batched, in one process.

    python -m benchmarks.eval_speed [--adapter models/adapter] [--data data/dataset/test.jsonl] [--n 100]

Runs the same N utterances three ways with the fine-tuned model (adapter merged, fp32, greedy):
1. sequential: one plain ``generate`` per utterance, the full prompt each time;
2. batched: ``eval.batch_size`` utterances per ``generate`` (left padding), the full prompt each time;
3. batched + shared prefix: as 2, with the system prompt's KV cache computed once and reused (what eval runs).
Prints each time, the ratios to 1 and whether the predictions are identical to 1's.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from skillcall.dataset import read_rows
from skillcall.evaluate import EvalParams
from skillcall.generation import Generation, generate
from skillcall.models import merge_adapter
from skillcall.params import load_params


def timed(label: str, fn) -> tuple[list[Generation], float]:
    began = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - began
    print(f"{label:<28} {seconds:7.1f} s  {len(out) / seconds:6.2f} utt/s", flush=True)
    return out, seconds


def main() -> None:
    import torch

    from skillcall.models import load_trained

    params = load_params("eval", EvalParams)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", default="models/adapter")
    ap.add_argument("--base", help="base model (default: the one the adapter records)")
    ap.add_argument("--data", default="data/dataset/test.jsonl", help="dataset rows; the first N are used")
    ap.add_argument("--n", type=int, default=100, help="utterances (%(default)s)")
    ap.add_argument("--batch-size", type=int, default=params.batch_size, help="(%(default)s, eval.batch_size)")
    ap.add_argument("--max-new-tokens", type=int, default=params.max_new_tokens, help="(%(default)s)")
    args = ap.parse_args()

    users = [r.user for r in read_rows(args.data)[: args.n]]
    model, prompter, _ = load_trained(args.adapter, args.base)
    model = merge_adapter(model)
    print(
        f"{len(users)} utterances from {args.data}; batch size {args.batch_size}, max_new_tokens {args.max_new_tokens}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.processor()}"
    )
    generate(model, prompter, users[:2], 2, args.max_new_tokens)  # warm-up: first-call allocations
    runs = {
        "sequential (seed's way)": lambda: generate(model, prompter, users, 1, args.max_new_tokens, share_prefix=False),
        "batched": lambda: generate(model, prompter, users, args.batch_size, args.max_new_tokens, share_prefix=False),
        "batched + shared prefix": lambda: generate(model, prompter, users, args.batch_size, args.max_new_tokens),
    }
    results = {label: timed(label, fn) for label, fn in runs.items()}
    (reference, ref_seconds), *_ = results.values()
    for label, (out, seconds) in list(results.items())[1:]:
        same = sum(a.text == b.text for a, b in zip(reference, out, strict=True))
        print(f"{label}: {ref_seconds / seconds:.1f}x faster than sequential; identical predictions: {same}/{len(out)}")
        for user, a, b in zip(users, reference, out, strict=True):
            if a.text != b.text:
                print(f"  differs: {user!r}: {a.text!r} vs {b.text!r}")


if __name__ == "__main__":
    main()
