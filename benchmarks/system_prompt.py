"""The names system prompt (``{names}``, the default) vs the skill lines (``{skills}``): prompt tokens, s/step.

    python benchmarks/system_prompt.py [--steps 20] [--base models/base]

Each prompt trains in its own process with the finetune params of params.yaml, only ``max_steps`` and the system
prompt template changed; same data and seed. ``names`` is ``prompts/system.txt``; ``skills`` is the template this
repository shipped before (one line per skill: signature and the first sentence of its description).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import compare_variants, train_variant  # noqa: E402

TEMPLATES = {
    "names": (ROOT / "prompts/system.txt").read_text(encoding="utf-8"),
    "skills": "Turn the user's words into one call. Skills:\n{skills}\nReply with the call only.\n",
}


def one(args: argparse.Namespace, name: str) -> dict:
    """Train ``args.steps`` steps with the ``name`` template; its rendered prompt's length in tokens first."""
    from transformers import AutoTokenizer

    from skillcall.examples import load_skills
    from skillcall.params import load_params
    from skillcall.prompting import Prompter
    from skillcall.train import FinetuneParams

    p = load_params("finetune", FinetuneParams, ROOT / "params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "system.txt"
        template.write_text(TEMPLATES[name], encoding="utf-8")
        prompt = replace(p.prompt, system_template=str(template))
        prompter = Prompter.build(prompt, load_skills(ROOT / "examples"), AutoTokenizer.from_pretrained(args.base))
        tokens = len(prompter.tokenizer(prompter.prompt(""), add_special_tokens=False)["input_ids"])
        return {"system_prompt": name, "prompt_tokens": tokens, **train_variant(args, prompt=prompt)}


def main() -> None:
    compare_variants(__doc__, __file__, sorted(TEMPLATES), one, steps=20)


if __name__ == "__main__":
    main()
