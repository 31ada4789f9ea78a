"""Turn utterances into skill calls with a fine-tuned adapter, one output line per utterance.

    python -m skillcall.predict "set a timer for ten minutes"       # -> timer(duration="10 minutes")
    printf 'weather in Oslo\\nthanks\\n' | python -m skillcall.predict --json
    python -m skillcall.predict --model models/export/skillcall-q8_0.gguf "what's the time in Tokyo"
    python -m skillcall.predict --no-grammar "hi"   # free decoding instead of the skills' grammar

Decoding is constrained by the skills' grammar (``skillcall.grammar``) unless ``--no-grammar``: every line is
then a valid call (unless cut by ``--max-new-tokens``).

A generation that is not a valid call is printed as ``# invalid (<reason>): "<raw text>"``
(or ``"valid": false`` with ``--json``); it never stops the other utterances.

Utterances are answered in batches of ``--batch-size``, in input order, each batch printed as soon as it is done.
``--json`` gives each utterance its batch's timing, named as such: ``batch_ms`` is the wall time of the whole batch
(prompts, system-prompt prefill, decoding) and ``batch_size`` the utterances in it; with ``--batch-size 1``
``batch_ms`` is the utterance's own latency.

    >>> from skillcall.skills import parse_signature
    >>> skills = {"timer": parse_signature('timer(duration="[duration]")')}
    >>> format_line(parse_generation(raw := "timer(duration='5 minutes')", skills), raw)
    'timer(duration="5 minutes")'
    >>> format_line(parse_generation(raw := "Sure, five minutes!", skills), raw)
    '# invalid (not_a_call): "Sure, five minutes!"'
    >>> as_json("5 min", parse_generation(raw := 'timer(duration="5 minutes")', skills), raw, 12.3456, 1)
    '{"utterance": "5 min", "call": "timer(duration=\\\\"5 minutes\\\\")", "skill": "timer", "arguments": {"duration": "5 minutes"}, "valid": true, "batch_ms": 12.35, "batch_size": 1}'
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import replace

with contextlib.redirect_stdout(sys.stderr):  # stdout is for calls only; transformers prints on import
    from skillcall.evaluate import Parsed, parse_generation
    from skillcall.generation import generate
    from skillcall.grammar import skills_grammar
    from skillcall.models import load_trained, merge_adapter
    from skillcall.prompting import BIASES


def format_line(parsed: Parsed, raw: str) -> str:
    """The canonical call, or the raw generation marked invalid (JSON-quoted so it stays on one line)."""
    if parsed.call is not None:
        return str(parsed.call)
    return f"# invalid ({parsed.error}): {json.dumps(raw, ensure_ascii=False)}"


def as_json(utterance: str, parsed: Parsed, raw: str, batch_ms: float, batch_size: int) -> str:
    """``{"utterance", "call", "skill", "arguments", "valid", "batch_ms", "batch_size"}``; invalid: call = raw text."""
    call = parsed.call
    record = {
        "utterance": utterance,
        "call": str(call) if call else raw,
        "skill": call.name if call else (parsed.name or None),
        "arguments": call.kwargs if call else {},
        "valid": call is not None,
        "batch_ms": round(batch_ms, 2),
        "batch_size": batch_size,
    }
    return json.dumps(record, ensure_ascii=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("utterances", nargs="*", help="utterances; none: read stdin, one per line")
    ap.add_argument("--adapter", default="models/adapter", help="adapter folder of the finetune stage (%(default)s)")
    ap.add_argument("--base", help="base model folder or hub id (default: the one the adapter records)")
    ap.add_argument("--model", help="a merged export instead of the adapter: a folder or a .gguf file of models/export")
    ap.add_argument(
        "--grammar",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="constrain decoding to the skills' grammar (default: on)",
    )
    ap.add_argument(
        "--other-bias", type=float, help="nats taken from other()'s first token (default: the model's stored value)"
    )
    ap.add_argument(
        "--copy-bias", type=float, help="nats added to the utterance's words in copied values (default: stored)"
    )
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument(
        "--batch-size", type=int, default=32, help="utterances per generate call (%(default)s); 1: timed one by one"
    )
    ap.add_argument("--max-new-tokens", type=int, default=48, help="generated tokens at most (%(default)s)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    utterances = args.utterances or [line.strip() for line in sys.stdin if line.strip()]
    if not utterances:
        sys.exit("predict: no utterances given (arguments or stdin)")
    model, prompter, skills = load_trained(args.model or args.adapter, None if args.model else args.base)
    model, grammar = merge_adapter(model), skills_grammar(skills) if args.grammar else None
    overrides = {k: v for k in BIASES if (v := getattr(args, k)) is not None}
    prompter = replace(prompter, **overrides)
    for start in range(0, len(utterances), args.batch_size):
        batch = utterances[start : start + args.batch_size]
        began = time.perf_counter()
        generations = generate(model, prompter, batch, args.batch_size, args.max_new_tokens, grammar=grammar)
        batch_ms = (time.perf_counter() - began) * 1000
        for utterance, generation in zip(batch, generations, strict=True):
            raw, parsed = generation.text, parse_generation(generation.text, skills)
            line = as_json(utterance, parsed, raw, batch_ms, len(batch)) if args.json else format_line(parsed, raw)
            print(line, flush=True)


if __name__ == "__main__":
    main()
