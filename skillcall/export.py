"""Merge a LoRA adapter into its base model: a plain HF model folder that loads and generates without peft.

    python -m skillcall.export --adapter models/adapter --out models/merged [--base BASE]

The folder holds the merged weights, config, tokenizer and chat template, and the adapter's prompt
config, system prompt, ``skills.json`` and ``training.json`` (plus where it was merged from), so
``python -m skillcall.predict --adapter models/merged`` and ``python -m stages.eval --model models/merged``
use it as they use the adapter. Any HF tool loads it: ``AutoModelForCausalLM.from_pretrained("models/merged")``.

The base is loaded unquantised in the training dtype, whatever the adapter was trained on: a QLoRA
adapter (``quantization: 4bit``) is merged into the full-precision base, the usual way to ship one.

    >>> merged_training({"base_model": "models/base", "metrics": {}}, "models/adapter", "models/base")
    {'base_model': 'models/base', 'metrics': {}, 'merged_from': {'adapter': 'models/adapter', 'base_model': 'models/base'}}
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def merged_training(training: dict, adapter_dir: str | Path, base_model: str) -> dict:
    """``training.json`` of the adapter plus ``merged_from``: the adapter folder and the base it was merged into."""
    return {**training, "merged_from": {"adapter": str(adapter_dir), "base_model": base_model}}


def export(adapter_dir: str | Path, out_dir: str | Path, base_model: str | None = None) -> Path:
    """Merge ``adapter_dir`` into its base (or ``base_model``) and save everything under ``out_dir`` (replaced)."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from skillcall.models import ADAPTER_CONFIG, SKILLS_FILE, TRAINING_FILE, load_base
    from skillcall.prompting import Prompter

    adapter, out = Path(adapter_dir), Path(out_dir)
    if not (adapter / ADAPTER_CONFIG).exists():
        raise FileNotFoundError(
            f"{adapter / ADAPTER_CONFIG}: missing; is {adapter} an adapter folder of the finetune stage?"
        )
    if out.resolve() == adapter.resolve():
        raise ValueError(f"--out {out} is the adapter folder; choose another folder")
    training = json.loads((adapter / TRAINING_FILE).read_text(encoding="utf-8"))
    base = base_model or training["base_model"]
    model, _ = load_base(base, "none", training["params"]["dtype"])
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(adapter)

    shutil.rmtree(out, ignore_errors=True)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    Prompter.load(adapter, tokenizer).save(out)
    shutil.copyfile(adapter / SKILLS_FILE, out / SKILLS_FILE)
    (out / TRAINING_FILE).write_text(json.dumps(merged_training(training, adapter, base), indent=2) + "\n")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", default="models/adapter", help="adapter folder of the finetune stage (%(default)s)")
    ap.add_argument("--out", required=True, help="output folder (replaced): the merged HF model")
    ap.add_argument("--base", help="base model folder or hub id (default: the one the adapter records)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = export(args.adapter, args.out, args.base)
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"export: {args.adapter} merged into its base -> {out} ({size:.0f} MB)")


if __name__ == "__main__":
    main()
