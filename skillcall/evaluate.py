"""Evaluate a call model: batched greedy generation, scoring against gold, metrics, confusion, latency.

Scoring one generation (pure; no model needed):

    >>> from skillcall.skills import parse_signature
    >>> skills = {s.name: s for s in map(parse_signature, ['weather(location="[location]")', "other()"])}
    >>> p = score("rain in Oslo?", 'weather(location="Oslo")', "weather(location='Oslo')", skills)
    >>> p.prediction, p.valid, p.correct, p.extracted == p.gold
    ('weather(location="Oslo")', True, True, False)
    >>> score("hmm", "other()", "Sure! I can help.", skills).predicted_skill
    'invalid'
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from skillcall.calls import UNKNOWN_SKILL, CallError, calls_match, extract_call, parse_call, validate
from skillcall.dataset import Row, read_rows
from skillcall.examples import read_pairs_file
from skillcall.prompting import Prompter
from skillcall.skills import Skills

INVALID = "invalid"  # the confusion matrix's column for generations that are not a valid call
OTHER = "other"  # the "not a request" skill: the positive class of other_precision/recall/f1


@dataclass
class EvalParams:
    batch_size: int
    max_new_tokens: int
    baseline: bool
    split: str


@dataclass(frozen=True)
class Prediction:
    """One scored generation; a row of ``predictions.jsonl``."""

    utterance: str
    gold: str  # canonical gold call
    skill: str  # gold skill
    raw: str  # the decoded generation, special tokens removed
    extracted: str  # extract_call(raw): the call-looking first line
    prediction: str  # canonical call when valid, else ``extracted``
    predicted_skill: str  # the validated skill name, or INVALID
    name: str  # the called name when ``extracted`` parses (even if invalid), else ""
    valid: bool  # parses and satisfies a signature
    error: str  # the CallError reason when not valid, else ""
    correct: bool  # canonically equal to gold
    source: str = ""  # "hand" | "generated" | "augmented" | "test_file"
    latency_ms: float = 0.0  # this utterance's share of its batch's generation time


def score(utterance: str, gold: str, raw: str, skills: Skills, source: str = "", latency_ms: float = 0.0) -> Prediction:
    """Extract, parse and validate ``raw``; compare it with the canonical ``gold`` call."""
    gold_call = validate(gold, skills)
    extracted = extract_call(raw)
    try:
        name = parse_call(extracted).name
    except CallError:
        name = ""
    try:
        call, error = validate(extracted, skills), ""
    except CallError as e:
        call, error = None, e.reason
    return Prediction(
        utterance=utterance,
        gold=str(gold_call),
        skill=gold_call.name,
        raw=raw,
        extracted=extracted,
        prediction=str(call) if call else extracted,
        predicted_skill=call.name if call else INVALID,
        name=name,
        valid=call is not None,
        error=error,
        correct=calls_match(extracted, gold_call, skills),
        source=source,
        latency_ms=latency_ms,
    )


def _mean(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def precision_recall_f1(preds: list[Prediction], positive: str = OTHER) -> tuple[float, float, float]:
    """P/R/F1 with ``positive`` as the positive class (predicted = a *valid* call of that skill).

    Edge cases, all 0.0 rather than NaN so ``dvc exp show`` can compare them: no predicted
    positives -> precision 0; no gold positives -> recall 0; precision + recall == 0 -> F1 0.

    >>> precision_recall_f1([])
    (0.0, 0.0, 0.0)
    """
    tp = sum(p.predicted_skill == positive and p.skill == positive for p in preds)
    predicted = sum(p.predicted_skill == positive for p in preds)
    actual = sum(p.skill == positive for p in preds)
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _accuracy_by(preds: list[Prediction], key: str) -> dict[str, dict]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for p in preds:
        groups[getattr(p, key)].append(p.correct)
    return {k: {"accuracy": _mean(v), "count": len(v)} for k, v in sorted(groups.items())}


def compute_metrics(preds: list[Prediction]) -> dict:
    """Every metric of ``eval/metrics.json`` (one model) from scored predictions.

    ``latency_ms_*`` are percentiles of the per-utterance latency (batch time / batch size);
    ``throughput`` is utterances per second of generation time.
    """
    if not preds:
        raise ValueError("nothing to evaluate: no predictions")
    precision, recall, f1 = precision_recall_f1(preds)
    latencies = [p.latency_ms for p in preds]
    seconds = sum(latencies) / 1000
    return {
        "n": len(preds),
        "exact_match": _mean([p.extracted == p.gold for p in preds]),
        "ast_accuracy": _mean([p.correct for p in preds]),
        "name_accuracy": _mean([p.name == p.skill for p in preds]),
        "lenient_accuracy": _mean([p.gold in p.raw for p in preds]),
        "valid_rate": _mean([p.valid for p in preds]),
        "other_precision": precision,
        "other_recall": recall,
        "other_f1": f1,
        "per_skill": _accuracy_by(preds, "skill"),
        "per_source": _accuracy_by(preds, "source"),
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
        "throughput": len(preds) / seconds if seconds else 0.0,
    }


def confusion_rows(preds: list[Prediction]) -> list[dict[str, str]]:
    """One ``{"actual", "predicted"}`` record per utterance: the data of DVC's ``confusion`` plot."""
    return [{"actual": p.skill, "predicted": p.predicted_skill} for p in preds]


def prediction_records(preds: list[Prediction]) -> list[dict]:
    return [asdict(p) for p in preds]


_UNKNOWN = re.compile(rf"\({UNKNOWN_SKILL}\): unknown skill '([^']+)'")


def read_test_file(path: str | Path, skills: Skills) -> tuple[list[Row], dict]:
    """Rows of a JSON/JSONL test file (DESIGN.md §4) and a report of what was skipped.

    Lenient: records that do not validate (an unknown skill, say) are skipped and reported as
    ``{"path", "read", "skipped", "unknown_skills": {name: count}, "warnings": [...]}``.
    """
    pairs, warnings = read_pairs_file(path, skills, lenient=True)
    unknown = Counter(m.group(1) for w in warnings if (m := _UNKNOWN.search(w)))
    report = {
        "path": str(path),
        "read": len(pairs) + len(warnings),
        "skipped": len(warnings),
        "unknown_skills": dict(sorted(unknown.items())),
        "warnings": warnings,
    }
    return [Row(p.user, p.answer, p.skill, "test_file", p.file) for p in pairs], report


def read_split(dataset_dir: str | Path, split: str) -> list[Row]:
    """``data/dataset/<split>.jsonl``; ``split`` is ``test`` or ``val``."""
    if split not in ("test", "val"):
        raise ValueError(f"eval.split must be 'test' or 'val', got {split!r}")
    return read_rows(Path(dataset_dir) / f"{split}.jsonl")


@dataclass(frozen=True)
class Generation:
    text: str  # the model's answer: decoded, cut at the end of the turn
    latency_ms: float  # its batch's wall time (encode + generate + decode) / batch size


def stopping_criteria(tokenizer: Any, prompt_len: int, stops: list[str]) -> Any:
    """Stop each sequence once its generated text contains one of ``stops`` (end of turn, newline).

    Works for stops that span several tokens (``</s>`` in a raw prompt), which ``eos_token_id`` cannot.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            texts = tokenizer.batch_decode(input_ids[:, prompt_len:])
            return torch.tensor([any(s in t for s in stops) for t in texts], device=input_ids.device)

    return StoppingCriteriaList([StopOnText()])


def generate_batch(model: Any, prompter: Prompter, users: list[str], max_new_tokens: int) -> list[str]:
    """Greedy answers for one left-padded batch, each stopped at the end of the turn or a newline."""
    import torch

    tokenizer = prompter.tokenizer
    batch = prompter.encode(users).to(model.device)
    prompt_len = batch["input_ids"].shape[1]
    stops = [s for s in (prompter.end_of_turn, tokenizer.eos_token, "\n") if s]
    with torch.inference_mode():
        ids = model.generate(
            **batch,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            stopping_criteria=stopping_criteria(tokenizer, prompt_len, stops),
        )
    texts = tokenizer.batch_decode(ids[:, prompt_len:])
    return [prompter.answer_from(t.split(tokenizer.eos_token)[0]) for t in texts]


def generate(model: Any, prompter: Prompter, users: list[str], batch_size: int, max_new_tokens: int) -> list[Generation]:
    """Greedy answers for ``users`` in input order, batched by similar length to waste little padding.

    ``batch_size=1`` is the unbatched baseline: one ``generate`` call per utterance.
    """
    order = sorted(range(len(users)), key=lambda i: len(users[i]))
    out: list[Generation | None] = [None] * len(users)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        began = time.perf_counter()
        texts = generate_batch(model, prompter, [users[i] for i in chunk], max_new_tokens)
        latency_ms = (time.perf_counter() - began) * 1000 / len(chunk)
        for i, text in zip(chunk, texts, strict=True):
            out[i] = Generation(text, latency_ms)
    return out  # type: ignore[return-value]
