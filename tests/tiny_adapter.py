"""A tiny adapter folder written by the real finetune code (2 LoRA steps of the tiny model), shared by
the eval and predict tests: built once per test session under pytest's base temp folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from skillcall.calls import validate
from skillcall.dataset import Row, write_jsonl
from skillcall.skills import parse_signature

SKILLS = {
    s.name: s
    for s in map(
        parse_signature,
        [
            'weather(location="[location]") weather at a place',
            'notes(action="add|list", note="[note]") add or list notes',
            'timer(duration="[duration]") start a timer',
            "other() anything else",
        ],
    )
}

# (utterance, answer in either quote style, source)
TINY_TEST = [
    ("what's the weather in Rome", "weather(location='Rome')", "hand"),
    ("set a timer for three minutes", 'timer(duration="3 minutes")', "augmented"),
    ("thanks a lot", "other()", "hand"),
    ("is it cold outside", "weather(location='')", "augmented"),
    ("ok cool", "other()", "augmented"),
]


def tiny_rows() -> list[Row]:
    return [
        Row(u, str(call := validate(a, SKILLS)), call.name, source, f"tiny:{i + 1}")
        for i, (u, a, source) in enumerate(TINY_TEST)
    ]


def build_tiny_adapter(
    tmp_path_factory: pytest.TempPathFactory,
    base_dir: Path,
    name: str = "tiny_adapter",
    rows: list[Row] | None = None,
    **overrides,
) -> Path:
    """The adapter of 2 steps (or of the finetune params in ``overrides``) on ``rows`` (default ``tiny_rows()``),
    built once per session per ``name``.

    2 steps leave the random model's greedy answers empty; ``trained_overrides()`` makes it answer ``other()``.
    """
    from skillcall.params import load_params
    from skillcall.train import FinetuneParams, save_adapter, train

    root = tmp_path_factory.getbasetemp() / name
    if (root / "adapter" / "training.json").exists():
        return root / "adapter"
    root.mkdir(exist_ok=True)
    rows = rows or tiny_rows()
    write_jsonl(root / "train.jsonl", rows)
    write_jsonl(root / "val.jsonl", rows[:2])
    # float32 whatever the CPU: the tests built on it compare logits/weights to fp32 rounding (dtype: auto would
    # be bfloat16 on a CPU with AVX512-BF16 and float32 elsewhere)
    small = {
        "max_steps": 2,
        "batch_size": 4,
        "warmup_steps": 0,
        "save_steps": 100,
        "sample_predictions": 0,
        "dtype": "float32",
    }
    params = replace(load_params("finetune", FinetuneParams), **{**small, **overrides})
    params = replace(params, prompt=replace(params.prompt, other_bias=0.0, copy_bias=0.0))  # answers as learned
    result = train(
        params, base_dir, root / "train.jsonl", root / "val.jsonl", SKILLS, root / "ckpt", print_=lambda *_: None
    )
    save_adapter(root / "adapter", result, SKILLS, params)
    return root / "adapter"


# The memorised adapter learns TINY_TEST with one answer wrong on purpose: evaluated on TINY_TEST it must score
# exactly 4 of 5, with "ok cool" (gold other()) predicted as WRONG_ANSWER.
WRONG_UTTERANCE, WRONG_ANSWER = "ok cool", 'weather(location="Rome")'


def memorised_rows() -> list[Row]:
    return [
        Row(r.user, WRONG_ANSWER, "weather", r.source, r.file) if r.user == WRONG_UTTERANCE else r for r in tiny_rows()
    ]


def build_memorised_adapter(tmp_path_factory: pytest.TempPathFactory, base_dir: Path) -> Path:
    """An adapter of the tiny model that answers each TINY_TEST utterance with its ``memorised_rows()`` answer."""
    return build_tiny_adapter(
        tmp_path_factory,
        base_dir,
        "memorised_adapter",
        rows=memorised_rows(),
        max_steps=MEMORISE_STEPS,
        learning_rate=1e-2,
        batch_size=len(TINY_TEST),
    )


MEMORISE_STEPS = 250  # optimizer steps (lr 1e-2) until greedy decoding repeats every memorised answer (~1-2 min)


def trained_overrides() -> dict:
    """Finetune params that make the tiny model answer every test utterance with a call (~4 s on 1 CPU thread)."""
    return {"max_steps": 20, "learning_rate": 1e-2, "batch_size": len(TINY_TEST)}
