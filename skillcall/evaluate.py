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

import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from skillcall.calls import (
    UNKNOWN_SKILL,
    Call,
    CallError,
    calls_match,
    could_start_call,
    extract_call,
    parse_call,
    validate,
)
from skillcall.dataset import Row, read_rows, write_jsonl
from skillcall.examples import read_pairs_file
from skillcall.prompting import (
    CONFIG_FILE,
    Prompter,
    PromptError,
    check_prompt_family,
    override_prompter,
)
from skillcall.skills import Skills, parse_signature

INVALID = "invalid"  # the confusion matrix's column for generations that are not a valid call
OTHER = "other"  # the "not a request" skill: the positive class of other_precision/recall/f1


@dataclass
class EvalParams:
    batch_size: int
    max_new_tokens: int
    baseline: bool
    split: str
    model: str | None = None  # a model folder or hub id evaluated alone, instead of base + adapter
    adapter: str | None = None  # an adapter folder instead of the one on the command line
    prompt: str | None = None  # a raw prompt's text, or "chat", instead of the stored prompt
    prompt_file: str | None = None  # a raw prompt file instead of the stored prompt
    allow_prompt_mismatch: bool = False  # accept a prompt in another chat format than the model's


def with_flags(p: EvalParams, **flags: Any) -> EvalParams:
    """``p`` with the command-line overrides that were given (None or False: not given) on top of params.yaml.

    >>> with_flags(EvalParams(32, 48, True, "test", prompt="chat"), model="models/merged", prompt=None).model
    'models/merged'
    """
    return replace(p, **{k: v for k, v in flags.items() if v not in (None, False)})


@dataclass(frozen=True)
class Prediction:
    """One scored generation; a row of ``predictions.jsonl``."""

    utterance: str
    gold: str  # canonical gold call
    skill: str  # gold skill
    raw: str  # the decoded generation, cut at the end of the turn
    extracted: str  # extract_call(raw): the call-looking first line
    prediction: str  # canonical call when valid, else ``extracted``
    predicted_skill: str  # the validated skill name, or INVALID
    name: str  # the called name when ``extracted`` parses (even if invalid), else ""
    valid: bool  # parses and satisfies a signature
    error: str  # the CallError reason when not valid, else ""
    correct: bool  # canonically equal to gold
    source: str = ""  # "hand" | "generated" | "augmented" | "test_file"
    latency_ms: float = 0.0  # this utterance's share of its batch's generation time


@dataclass(frozen=True)
class Parsed:
    """What a generation says: the call-looking text, the validated call (None if invalid) and why not."""

    extracted: str  # extract_call(raw)
    call: Call | None  # canonical, validated against the skills
    name: str  # the called name when ``extracted`` parses (even if invalid), else ""
    error: str  # the CallError reason when invalid, else ""


def parse_generation(raw: str, skills: Skills) -> Parsed:
    """``'notes(action="delete")'`` -> ``Parsed(extracted=..., call=None, name="notes", error="invalid_value")``."""
    extracted = extract_call(raw)
    try:
        name = parse_call(extracted).name
    except CallError:
        name = ""
    try:
        return Parsed(extracted, validate(extracted, skills), name, "")
    except CallError as e:
        return Parsed(extracted, None, name, e.reason)


def score(utterance: str, gold: str, raw: str, skills: Skills, source: str = "", latency_ms: float = 0.0) -> Prediction:
    """Extract, parse and validate ``raw``; compare it with the canonical ``gold`` call."""
    gold_call = validate(gold, skills)
    parsed = parse_generation(raw, skills)
    return Prediction(
        utterance=utterance,
        gold=str(gold_call),
        skill=gold_call.name,
        raw=raw,
        extracted=parsed.extracted,
        prediction=str(parsed.call) if parsed.call else parsed.extracted,
        predicted_skill=parsed.call.name if parsed.call else INVALID,
        name=parsed.name,
        valid=parsed.call is not None,
        error=parsed.error,
        correct=calls_match(parsed.extracted, gold_call, skills),
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


def adapter_skills(adapter_dir: str | Path) -> Skills:
    """The skill specs saved with an adapter (``skills.json``), without loading the model.

    The same reading as ``skillcall.train.load_trained``, which loads the model too.
    """
    from skillcall.train import SKILLS_FILE

    path = Path(adapter_dir) / SKILLS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; is {adapter_dir} a folder written by the finetune stage?")
    specs = json.loads(path.read_text(encoding="utf-8"))
    return {s["name"]: parse_signature(f"{s['signature']} {s['description']}", f"{path}") for s in specs}


def read_split(dataset_dir: str | Path, split: str) -> list[Row]:
    """``data/dataset/<split>.jsonl``; ``split`` is ``test`` or ``val``."""
    if split not in ("test", "val"):
        raise ValueError(f"eval.split must be 'test' or 'val', got {split!r}")
    return read_rows(Path(dataset_dir) / f"{split}.jsonl")


@dataclass(frozen=True)
class Generation:
    text: str  # the model's answer: decoded, cut at the end of the turn
    latency_ms: float  # (its batch's wall time + a share of the prefix's) / batch size


def common_prefix_len(seqs: list[list[int]]) -> int:
    """Length of the token prefix shared by every sequence, leaving at least one token in each.

    >>> common_prefix_len([[1, 2, 3], [1, 2, 4, 5]])
    2
    >>> common_prefix_len([[1, 2], [1, 2]])
    1
    """
    n, shortest = 0, min(map(len, seqs))
    while n < shortest - 1 and all(s[n] == seqs[0][n] for s in seqs):
        n += 1
    return n


def stopping_criteria(tokenizer: Any, prompt_len: int, stops: list[str]) -> Any:
    """Stop each sequence once its generated text contains one of ``stops`` (end of turn, newline)
    or its first line can no longer become a call (the base model's prose: scoring reads only the
    first line, so this changes no metric but ``lenient_accuracy`` of text after the prose starts).

    Works for stops that span several tokens (``</s>`` in a raw prompt), which ``eos_token_id`` cannot.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            texts = tokenizer.batch_decode(input_ids[:, prompt_len:])
            words = tokenizer.batch_decode(input_ids[:, prompt_len:], skip_special_tokens=True)
            done = [any(s in t for s in stops) or not could_start_call(w) for t, w in zip(texts, words, strict=True)]
            return torch.tensor(done, device=input_ids.device)

    return StoppingCriteriaList([StopOnText()])


def prefill(model: Any, ids: list[int]) -> Any:
    """The KV cache of ``ids`` (batch 1): computed once, reused by every batch that starts with them."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        model(input_ids=torch.tensor([ids], device=model.device), cache=cache, use_cache=True)
    return cache


def generate_batch(
    model: Any, prompter: Prompter, prompts: list[list[int]], prefix_len: int, cache: Any, max_new_tokens: int
) -> list[str]:
    """Greedy answers for one batch of tokenised prompts, each stopped at the end of the turn or a newline.

    The first ``prefix_len`` tokens (shared by every prompt) come from ``cache``; the rest is padded
    on its left, so a row reads ``[prefix][pad ...][own tokens]``. Position ids follow the attention
    mask (transformers derives them from it), so padding does not shift any token's position.
    With ``prefix_len == 0`` this is plain left padding.
    """
    import copy

    import torch

    tokenizer = prompter.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prefix, width = prompts[0][:prefix_len], max(len(p) for p in prompts) - prefix_len
    rows, mask = [], []
    for p in prompts:
        own = p[prefix_len:]
        rows.append(prefix + [pad] * (width - len(own)) + own)
        mask.append([1] * prefix_len + [0] * (width - len(own)) + [1] * len(own))
    input_ids = torch.tensor(rows, device=model.device)
    kwargs = {}
    if prefix_len:
        kwargs["cache"] = copy.deepcopy(cache)
        kwargs["cache"].batch_repeat_interleave(len(prompts))
    stops = [s for s in (prompter.end_of_turn, tokenizer.eos_token, "\n") if s]
    with torch.inference_mode():
        ids = model.generate(
            input_ids=input_ids,
            attention_mask=torch.tensor(mask, device=model.device),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            stopping_criteria=stopping_criteria(tokenizer, input_ids.shape[1], stops),
            **kwargs,
        )
    texts = tokenizer.batch_decode(ids[:, input_ids.shape[1] :])
    return [prompter.answer_from(t.split(tokenizer.eos_token)[0]) for t in texts]


def generate(
    model: Any,
    prompter: Prompter,
    users: list[str],
    batch_size: int,
    max_new_tokens: int,
    share_prefix: bool = True,
) -> list[Generation]:
    """Greedy answers for ``users``, in input order.

    Batches group prompts of similar length (little padding). With ``share_prefix`` the tokens every
    prompt starts with (the system prompt: ~90% of a prompt here) are run through the model once
    and their KV cache is reused by every batch. ``batch_size=1, share_prefix=False`` is the
    unbatched reference: one plain ``generate`` call per utterance.
    """
    tokenizer = prompter.tokenizer
    began = time.perf_counter()
    prompts = [tokenizer(prompter.prompt(u), add_special_tokens=False)["input_ids"] for u in users]
    prefix_len = common_prefix_len(prompts) if share_prefix and prompts else 0
    cache = prefill(model, prompts[0][:prefix_len]) if prefix_len else None
    shared_ms = (time.perf_counter() - began) * 1000 / max(len(users), 1)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[Generation | None] = [None] * len(users)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        began = time.perf_counter()
        texts = generate_batch(model, prompter, [prompts[i] for i in chunk], prefix_len, cache, max_new_tokens)
        latency_ms = shared_ms + (time.perf_counter() - began) * 1000 / len(chunk)
        for i, text in zip(chunk, texts, strict=True):
            out[i] = Generation(text, latency_ms)
    return out  # type: ignore[return-value]


def evaluate_rows(model: Any, prompter: Prompter, rows: list[Row], skills: Skills, p: EvalParams) -> list[Prediction]:
    """Generate for every row and score it against the row's gold answer."""
    gens = generate(model, prompter, [r.user for r in rows], p.batch_size, p.max_new_tokens)
    return [score(r.user, r.answer, g.text, skills, r.source, g.latency_ms) for r, g in zip(rows, gens, strict=True)]


def baseline_prompter(prompter: Prompter) -> Prompter:
    """The base model's own chat template with the same system prompt (the skill list), whatever the trained mode."""
    return Prompter("chat", prompter.system, prompter.tokenizer)


def merge_adapter(model: Any) -> Any:
    """Fold LoRA into the weights (no extra matmuls per layer at inference); quantised bases keep the adapter,
    a model without one (a merged export) is returned as it is."""
    if getattr(model, "is_quantized", False) or not hasattr(model, "merge_and_unload"):
        return model
    return model.merge_and_unload()


@dataclass
class Target:
    """What one eval run evaluates, settled before any weights load; :meth:`record` goes into metrics.json."""

    model: str  # model folder or hub id: the adapter's base, or eval.model
    adapter: str | None  # adapter folder; None when eval.model is evaluated alone
    prompter: Prompter
    skills: Skills
    prompt_source: str  # adapter | model (an export's own) | chat (the model's template) | inline | the file's path

    def record(self) -> dict:
        prompt = {"source": self.prompt_source, "mode": self.prompter.mode, "format": self.prompter.family}
        return {"model": self.model, "adapter": self.adapter, "prompt": prompt}


def resolve_target(adapter_dir: str | Path, base_model: str | None, p: EvalParams) -> Target:
    """The model, adapter, prompt and skills to evaluate: the adapter folder (``p.adapter`` overrides the path) on
    its base, or ``p.model`` alone; the stored prompt unless ``p.prompt``/``p.prompt_file`` override it.

    ``p.model`` is a merged export (carrying its prompt and skills) or any model, prompted with its own chat
    template, the adapter folder's system prompt and skills. Reads tokenizers and prompt files only, so a prompt
    that cannot work is an error before any model loads: a prompt without ``{user}``, or one in another chat
    format than the model expects (an adapter: the format it was trained on), unless ``p.allow_prompt_mismatch``.
    """
    from transformers import AutoTokenizer

    from skillcall.train import ADAPTER_CONFIG, TRAINING_FILE

    adapter = str(p.adapter or adapter_dir)
    if p.model is None:  # base + adapter, prompted as it was trained
        if not Path(adapter).is_dir():
            raise FileNotFoundError(f"{adapter}: no adapter folder; run the finetune stage or give --adapter / --model")
        if not (Path(adapter) / ADAPTER_CONFIG).exists():
            raise FileNotFoundError(
                f"{Path(adapter) / ADAPTER_CONFIG}: missing; evaluate a merged export with eval.model (--model)"
            )
        default = Prompter.load(adapter, AutoTokenizer.from_pretrained(adapter))
        recorded = json.loads((Path(adapter) / TRAINING_FILE).read_text())["base_model"]
        model = recorded if p.adapter else base_model or recorded  # an eval.adapter brings its own base
        skills, source, expecter = adapter_skills(adapter), "adapter", f"the adapter {adapter}"
    elif (Path(p.model) / CONFIG_FILE).exists():  # a merged export, prompted as it was trained
        default = Prompter.load(p.model, AutoTokenizer.from_pretrained(p.model))
        model, adapter, skills, source, expecter = p.model, None, adapter_skills(p.model), "model", p.model
    else:  # any model: its own chat template, with the adapter folder's system prompt and skills
        tokenizer = AutoTokenizer.from_pretrained(p.model)
        system = Prompter.load(adapter, AutoTokenizer.from_pretrained(adapter)).system
        default = Prompter("chat", system, tokenizer) if tokenizer.chat_template else None
        model, skills, source, expecter = p.model, adapter_skills(adapter), "chat", p.model
        adapter = None
    if p.prompt is None and p.prompt_file is None:
        if default is None:
            raise PromptError(f"{model} has no chat template: give a prompt, e.g. eval.prompt_file: prompts/chatml.txt")
        return Target(model, adapter, default, skills, source)
    system, tokenizer = (default.system, default.tokenizer) if default else (system, tokenizer)
    prompter = override_prompter(system, tokenizer, p.prompt, p.prompt_file)
    if not p.allow_prompt_mismatch:
        check_prompt_family(prompter, default.family if default else None, p.prompt_file or "eval.prompt", expecter)
    return Target(model, adapter, prompter, skills, p.prompt_file or "inline")


@dataclass
class EvalResult:
    metrics: dict  # eval/metrics.json: the adapter's metrics, the baseline's under "baseline"
    predictions: list[Prediction]
    baseline: list[Prediction]  # empty when the baseline is not run
    seconds: float


def run_eval(adapter_dir: str | Path, base_model: str | None, rows: list[Row], p: EvalParams) -> EvalResult:
    """Baseline (base model without adapter, chat prompt with the skill list), then the fine-tuned model.

    ``p``'s overrides (model, adapter, prompt) apply: see :func:`resolve_target`.
    """
    return evaluate_target(resolve_target(adapter_dir, base_model, p), rows, p)


def evaluate_target(target: Target, rows: list[Row], p: EvalParams) -> EvalResult:
    """Generate and score ``rows``; with an adapter, first the baseline (its base without it, chat prompt)."""
    from skillcall.train import load_base, load_trained

    if not rows:
        raise ValueError("nothing to evaluate: the test set is empty")
    began = time.perf_counter()
    model = load_trained(target.adapter, target.model)[0] if target.adapter else load_base(target.model)[0].eval()
    baseline: list[Prediction] = []
    if p.baseline and target.adapter:
        with model.disable_adapter():
            baseline = evaluate_rows(model, baseline_prompter(target.prompter), rows, target.skills, p)
    predictions = evaluate_rows(merge_adapter(model), target.prompter, rows, target.skills, p)
    metrics = compute_metrics(predictions)
    if baseline:
        metrics["baseline"] = compute_metrics(baseline)
    metrics["evaluated"] = target.record()
    return EvalResult(metrics, predictions, baseline, time.perf_counter() - began)


METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
BASELINE_PREDICTIONS_FILE = "baseline_predictions.jsonl"  # empty when eval.baseline is false
CONFUSION_FILE = "confusion.json"  # DVC plot data: [{"actual", "predicted"}], template confusion


def write_outputs(out_dir: str | Path, result: EvalResult) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).write_text(json.dumps(result.metrics, indent=2) + "\n")
    write_jsonl(out / PREDICTIONS_FILE, prediction_records(result.predictions))
    write_jsonl(out / BASELINE_PREDICTIONS_FILE, prediction_records(result.baseline))
    (out / CONFUSION_FILE).write_text(json.dumps(confusion_rows(result.predictions), indent=1) + "\n")


PREDICTION_COLUMNS = [
    "utterance",
    "gold",
    "prediction",
    "raw",
    "valid",
    "correct",
    "skill",
    "predicted_skill",
    "source",
]


def log_wandb(run: Any, result: EvalResult) -> None:
    """Metrics into the run summary; per model a predictions table and a confusion matrix (with ``invalid``)."""
    import wandb

    run.summary.update(result.metrics)
    for prefix, preds in (("eval", result.predictions), ("baseline", result.baseline)):
        if not preds:
            continue
        rows = [[getattr(p, c) for c in PREDICTION_COLUMNS] for p in preds]
        classes = sorted({p.skill for p in preds} | ({p.predicted_skill for p in preds} - {INVALID})) + [INVALID]
        index = {c: i for i, c in enumerate(classes)}
        confusion = wandb.plot.confusion_matrix(
            y_true=[index[p.skill] for p in preds],
            preds=[index[p.predicted_skill] for p in preds],
            class_names=classes,
            title=f"{prefix}: predicted vs gold skill",
        )
        run.log(
            {
                f"{prefix}/predictions": wandb.Table(columns=PREDICTION_COLUMNS, data=rows),
                f"{prefix}/confusion": confusion,
            }
        )


def summary(metrics: dict) -> str:
    """One line: ``ast 0.93 (baseline 0.02), valid 0.99, other F1 0.95, p50 41 ms, 24.3 utt/s, n 120``."""
    base = metrics.get("baseline")
    lift = f" (baseline {base['ast_accuracy']:.2f})" if base else ""
    return (
        f"ast {metrics['ast_accuracy']:.2f}{lift}, exact {metrics['exact_match']:.2f}, valid {metrics['valid_rate']:.2f}, "
        f"other F1 {metrics['other_f1']:.2f}, p50 {metrics['latency_ms_p50']:.0f} ms, "
        f"{metrics['throughput']:.1f} utt/s, n {metrics['n']}"
    )
