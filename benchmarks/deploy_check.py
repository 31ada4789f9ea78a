"""The real runtime: the exported GGUF files in llama.cpp (llama-cpp-python) with the GBNF grammar, beside the HF path.

    python benchmarks/deploy_check.py --export models/export --dataset data/dataset    (make deploy-check)

For each of q8_0 and q4_0: load time, AST accuracy, valid rate, utterances/s and generated tokens/s on the test
split, one utterance at a time (what a voice assistant does), greedy, ``skills.gbnf`` as the grammar. The HF path
in the same run: the model in transformers (the adapter on its base, or ``--hf-model``, e.g. the f16 GGUF), batched
as the eval stage runs it (constrained), and one by one on the first ``--batch1`` utterances for tokens/s.

llama.cpp's threads spin: time it on an otherwise idle machine (``--threads``; see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skillcall.evaluate import compute_metrics, read_split, read_test_file, score  # noqa: E402
from skillcall.generation import generate  # noqa: E402
from skillcall.grammar import GBNF_FILE, skills_grammar  # noqa: E402
from skillcall.models import adapter_skills, load_trained, merge_adapter, model_folder  # noqa: E402
from skillcall.prompting import Prompter  # noqa: E402


def summarise(label: str, rows, texts: list[str], skills, seconds: float, tokens: int, load_s: float) -> dict:
    preds = [score(r.user, r.answer, t, skills) for r, t in zip(rows, texts, strict=True)]
    m = compute_metrics(preds)
    line = {
        "path": label,
        "n": m["n"],
        "ast_accuracy": round(m["ast_accuracy"], 3),
        "valid_rate": round(m["valid_rate"], 3),
        "utt_per_s": round(len(rows) / seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "load_s": round(load_s, 1),
    }
    print("  ".join(f"{k}={v}" for k, v in line.items()), flush=True)
    return line


def run_llama_cpp(path: Path, prompter: Prompter, rows, skills, gbnf: str, threads: int) -> dict:
    from llama_cpp import Llama, LlamaGrammar

    began = time.perf_counter()
    llm = Llama(model_path=str(path), n_ctx=1024, n_threads=threads, n_batch=512, verbose=False)
    load_s = time.perf_counter() - began
    grammar = LlamaGrammar.from_string(gbnf, verbose=False)
    texts, tokens = [], 0
    began = time.perf_counter()
    for r in rows:
        out = llm.create_completion(
            prompter.prompt(r.user), max_tokens=48, temperature=0.0, grammar=grammar, stop=[prompter.end_of_turn]
        )
        texts.append(out["choices"][0]["text"])
        tokens += out["usage"]["completion_tokens"]
    return summarise(f"llama.cpp {path.name}", rows, texts, skills, time.perf_counter() - began, tokens, load_s)


def run_hf(model_path: str, rows, skills, batch_size: int, batch1: int, grammar: bool) -> list[dict]:
    began = time.perf_counter()
    model, prompter, _ = load_trained(model_path)
    model = merge_adapter(model)
    load_s = time.perf_counter() - began
    g = skills_grammar(skills) if grammar else None
    out = []
    for label, subset, bs in (("batched", rows, batch_size), ("batch 1", rows[:batch1], 1)):
        began = time.perf_counter()
        gens = generate(model, prompter, [r.user for r in subset], bs, 48, share_prefix=bs > 1, grammar=g)
        seconds = time.perf_counter() - began
        tokens = sum(len(prompter.tokenizer(x.text, add_special_tokens=False)["input_ids"]) + 1 for x in gens)
        name = f"transformers {Path(model_path).name} {label}{' +grammar' if grammar else ''}"
        out.append(summarise(name, subset, [x.text for x in gens], skills, seconds, tokens, load_s))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", default="models/export", help="the export stage's folder (%(default)s)")
    ap.add_argument("--dataset", default="data/dataset", help="folder with test.jsonl (%(default)s)")
    ap.add_argument("--test-file", help="a JSON/JSONL test file instead of the test split")
    ap.add_argument("--hf-model", help="model for the HF path (default: models/adapter if present, else the f16 GGUF)")
    ap.add_argument("--kinds", default="q8_0,q4_0", help="GGUF types run in llama.cpp (%(default)s)")
    ap.add_argument("--limit", type=int, default=0, help="first N utterances only (0: all)")
    ap.add_argument("--threads", type=int, default=2, help="llama.cpp threads (%(default)s)")
    ap.add_argument("--batch-size", type=int, default=16, help="HF batch size, as eval.batch_size (%(default)s)")
    ap.add_argument("--batch1", type=int, default=40, help="utterances for the HF batch-1 tokens/s (%(default)s)")
    ap.add_argument("--no-hf", action="store_true", help="llama.cpp only")
    args = ap.parse_args(argv)

    export = Path(args.export)
    skills = adapter_skills(export)
    if args.test_file:
        rows = read_test_file(args.test_file, skills)[0]
    else:
        rows = read_split(args.dataset, "test")
    rows = rows[: args.limit] if args.limit else rows
    gbnf = (export / GBNF_FILE).read_text(encoding="utf-8")
    from transformers import AutoTokenizer

    f16 = export / "skillcall-f16.gguf"
    prompter = Prompter.load(model_folder(f16), AutoTokenizer.from_pretrained(export, gguf_file=f16.name))
    print(f"deploy-check: {len(rows)} utterances, {export}", flush=True)
    for kind in args.kinds.split(","):
        run_llama_cpp(export / f"skillcall-{kind}.gguf", prompter, rows, skills, gbnf, args.threads)
    if not args.no_hf:
        hf = args.hf_model or ("models/adapter" if Path("models/adapter/adapter_config.json").exists() else str(f16))
        run_hf(hf, rows, skills, args.batch_size, args.batch1, grammar=True)


if __name__ == "__main__":
    main()
