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
    extract_call,
    parse_call,
    validate,
)
from skillcall.dataset import Row, read_rows, spread, write_jsonl
from skillcall.examples import read_pairs_file
from skillcall.generation import generate
from skillcall.grammar import Grammar, skills_grammar
from skillcall.models import (
    ADAPTER_CONFIG,
    TRAINING_FILE,
    adapter_skills,
    load_model,
    load_tokenizer,
    load_trained,
    merge_adapter,
    model_folder,
)
from skillcall.prompting import (
    BIASES,
    CONFIG_FILE,
    SAID,
    Prompter,
    PromptError,
    check_prompt_family,
    hints_of,
    override_prompter,
)
from skillcall.skills import OTHER, Skills

INVALID = "invalid"  # the confusion matrix's column for generations that are not a valid call


@dataclass
class EvalParams:
    batch_size: int
    max_new_tokens: int
    baseline: bool
    split: str
    baseline_rows: int = 0  # headline rows the baseline is scored on, spread over the set; 0 = all
    compare_rows: int = 0  # headline rows also decoded in the other setting (constrained vs free), spread; 0 = all
    grammar: bool = True  # the default setting: constrained decoding (the skills' grammar); compare_rows get both
    model: str | None = None  # a model folder or hub id evaluated alone, instead of base + adapter
    adapter: str | None = None  # an adapter folder instead of the one on the command line
    prompt: str | None = None  # a raw prompt's text, or "chat", instead of the stored prompt
    prompt_file: str | None = None  # a raw prompt file instead of the stored prompt
    allow_prompt_mismatch: bool = False  # accept a prompt in another chat format than the model's
    other_bias: float | None = None  # other()'s first-token offset (nats) instead of Prompter.other_bias
    copy_bias: float | None = None  # the offset (nats) of the utterance's words in copied values, not Prompter's


def with_flags(p: EvalParams, **flags: Any) -> EvalParams:
    """``p`` with the command-line overrides that were given (None or False: not given) on top of params.yaml.

    >>> with_flags(EvalParams(32, 48, True, "test", prompt="chat"), model="models/merged", prompt=None).model
    'models/merged'
    >>> with_flags(EvalParams(32, 48, True, "test", other_bias=2.0), other_bias=0.0).other_bias
    0.0
    """
    return replace(p, **{k: v for k, v in flags.items() if v is not None and v is not False})


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
        "exact_match": _mean([p.prediction == p.gold for p in preds]),
        "ast_accuracy": _mean([p.correct for p in preds]),
        "name_accuracy": _mean([p.name == p.skill for p in preds]),
        "lenient_accuracy": _mean([p.gold in p.raw for p in preds]),
        "valid_rate": _mean([p.valid for p in preds]),
        "other_precision": precision,
        "other_recall": recall,
        "other_f1": f1,
        "per_skill": _accuracy_by(preds, "skill"),
        "per_source": _accuracy_by(preds, "source"),
        "confusion": confusion_counts(preds),
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
        "throughput": len(preds) / seconds if seconds else 0.0,
    }


BLOCK = ("ast_accuracy", "exact_match", "valid_rate", "other_f1")  # the accuracy numbers of one set
HEADLINE = (*BLOCK, "latency_ms_p50", "latency_ms_p95")  # the headline set's keys in metrics.json, bare
# the other sets' keys in metrics.json, as "<set>_<key>"; every other number (n, name accuracy, per skill, per
# source, confusion, throughput, the base model with the grammar) is in details.json only
OTHERS = {
    "holdout": BLOCK,
    "baseline": ("ast_accuracy",),
    "constrained": ("ast_accuracy",),
    "unconstrained": ("ast_accuracy",),
}


def headline(details: dict[str, dict], first: str) -> dict:
    """The flat ``metrics.json`` (one column each in ``dvc exp show``): :data:`HEADLINE` of the ``first`` set,
    :data:`OTHERS` of the other sets present.

    >>> sets = {"test": {"ast_accuracy": 0.9, "exact_match": 0.8, "valid_rate": 1.0, "other_f1": 0.5,
    ...                  "latency_ms_p50": 40.0, "latency_ms_p95": 52.0, "n": 3}, "baseline": {"ast_accuracy": 0.1}}
    >>> headline(sets, "test")  # doctest: +NORMALIZE_WHITESPACE
    {'ast_accuracy': 0.9, 'exact_match': 0.8, 'valid_rate': 1.0, 'other_f1': 0.5, 'latency_ms_p50': 40.0,
     'latency_ms_p95': 52.0, 'baseline_ast_accuracy': 0.1}
    """
    out = {k: details[first][k] for k in HEADLINE}
    for name, keys in OTHERS.items():
        if name in details and name != first:
            out |= {f"{name}_{k}": details[name][k] for k in keys}
    return out


def confusion_counts(preds: list[Prediction]) -> dict[str, dict[str, int]]:
    """``{gold skill: {predicted skill or "invalid": count}}``."""
    out: dict[str, Counter] = defaultdict(Counter)
    for p in preds:
        out[p.skill][p.predicted_skill] += 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


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


def read_holdout(holdout_dir: str | Path, skills: Skills) -> list[Row]:
    """Every pair of ``<holdout_dir>/*.jsonl`` (strict: a bad line is an error naming file:line), source ``holdout``."""
    paths = sorted(Path(holdout_dir).glob("*.jsonl"))
    if not paths:
        raise FileNotFoundError(f"{holdout_dir}: no *.jsonl holdout file")
    return [
        Row(p.user, p.answer, p.skill, "holdout", p.file) for path in paths for p in read_pairs_file(path, skills)[0]
    ]


def read_split(dataset_dir: str | Path, split: str) -> list[Row]:
    """``data/dataset/<split>.jsonl``; ``split`` is ``test`` or ``val``."""
    if split not in ("test", "val"):
        raise ValueError(f"eval.split must be 'test' or 'val', got {split!r}")
    return read_rows(Path(dataset_dir) / f"{split}.jsonl")


def evaluate_rows(
    model: Any,
    prompter: Prompter,
    rows: list[Row],
    skills: Skills,
    p: EvalParams,
    label: str = "baseline",
    grammar: Grammar | None = None,
) -> list[Prediction]:
    """Generate for every row (a progress bar named ``label``; constrained by ``grammar`` when given) and score
    it against the row's gold answer."""
    users = [r.user for r in rows]
    gens = generate(model, prompter, users, p.batch_size, p.max_new_tokens, progress=label, grammar=grammar)
    return [score(r.user, r.answer, g.text, skills, r.source, g.latency_ms) for r, g in zip(rows, gens, strict=True)]


def baseline_prompter(prompter: Prompter) -> Prompter:
    """The base model's own chat template with the same system prompt (the skill list), whatever the trained mode."""
    return Prompter("chat", prompter.system, prompter.tokenizer)


@dataclass
class Target:
    """What one eval run evaluates, settled before any weights load; :meth:`record` goes into details.json."""

    model: str  # model folder or hub id: the adapter's base, or eval.model
    adapter: str | None  # adapter folder; None when eval.model is evaluated alone
    prompter: Prompter
    skills: Skills
    prompt_source: str  # adapter | model (an export's own) | chat (the model's template) | inline | the file's path

    def record(self) -> dict:
        prompt = {"source": self.prompt_source, "mode": self.prompter.mode, "format": self.prompter.family}
        prompt |= {"other_bias": self.prompter.other_bias, "copy_bias": self.prompter.copy_bias}
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
    elif (model_folder(p.model) / CONFIG_FILE).exists():  # a merged export (folder or GGUF), prompted as trained
        default = Prompter.load(model_folder(p.model), load_tokenizer(p.model))
        model, adapter, skills, source, expecter = p.model, None, adapter_skills(p.model), "model", p.model
    else:  # any model: its own chat template, with the adapter folder's system prompt and skills
        tokenizer = load_tokenizer(p.model)
        stored = Prompter.load(adapter, AutoTokenizer.from_pretrained(adapter))
        system, hints = stored.system, hints_of(stored)
        default = Prompter("chat", system, tokenizer, **hints) if tokenizer.chat_template else None
        model, skills, source, expecter = p.model, adapter_skills(adapter), "chat", p.model
        adapter = None
    stored = {k: getattr(default, k) for k in (*BIASES, *SAID)} if default else {}
    decoding = stored | {k: v for k in BIASES if (v := getattr(p, k)) is not None}
    if p.prompt is None and p.prompt_file is None:
        if default is None:
            raise PromptError(f"{model} has no chat template: give a prompt, e.g. eval.prompt_file: prompts/chatml.txt")
        return Target(model, adapter, replace(default, **decoding), skills, source)
    if default:
        system, tokenizer, hints = default.system, default.tokenizer, hints_of(default)
    prompter = override_prompter(system, tokenizer, p.prompt, p.prompt_file, **hints)
    if not p.allow_prompt_mismatch:
        check_prompt_family(prompter, default.family if default else None, p.prompt_file or "eval.prompt", expecter)
    return Target(model, adapter, replace(prompter, **decoding), skills, p.prompt_file or "inline")


@dataclass
class EvalResult:
    metrics: dict  # eval/metrics.json: flat headline numbers (:func:`headline`)
    details: dict  # eval/details.json: every metric of every set, what was evaluated, test-file reports
    predictions: dict[str, list[Prediction]]  # per set ("test", "holdout", "baseline"), in input order
    seconds: float


def run_eval(adapter_dir: str | Path, base_model: str | None, rows: list[Row], p: EvalParams) -> EvalResult:
    """Baseline (base model without adapter, chat prompt with the skill list), then the fine-tuned model.

    ``p``'s overrides (model, adapter, prompt) apply: see :func:`resolve_target`.
    """
    return evaluate_target(resolve_target(adapter_dir, base_model, p), {"test": rows}, p)


CONSTRAINED, UNCONSTRAINED = "constrained", "unconstrained"  # the two decoding settings
BASELINE_SETS = ("baseline", "baseline_constrained")  # the base model free / with the grammar


def setting(grammar: bool) -> str:
    """``"constrained"`` when decoding with the skills' grammar, else ``"unconstrained"``."""
    return CONSTRAINED if grammar else UNCONSTRAINED


def evaluate_target(target: Target, sets: dict[str, list[Row]], p: EvalParams) -> EvalResult:
    """Generate and score each named set of rows in the default decoding setting (``p.grammar``); the first set
    (the headline set, e.g. ``test``; then e.g. ``holdout``) also in the other setting. Results are named:

    - ``<set>``: the set in the default setting; the first one's are metrics.json's bare keys (:func:`headline`);
    - ``constrained`` / ``unconstrained``: the headline set in each setting, on the same ``p.compare_rows`` of its
      rows (spread over it; all when 0): the default setting's are ``<first set>``'s predictions of those rows;
    - with an adapter and ``p.baseline``: ``baseline`` (its base without the adapter, chat prompt, free decoding)
      and ``baseline_constrained`` (the same with the grammar: what the grammar alone buys), on the headline set
      (``p.baseline_rows`` of its rows, spread over it, when not 0).
    """
    for name, rows in sets.items():
        if not rows:
            raise ValueError(f"nothing to evaluate: the {name} set is empty")
    began = time.perf_counter()
    grammars = {CONSTRAINED: skills_grammar(target.skills), UNCONSTRAINED: None}
    default, other = setting(p.grammar), setting(not p.grammar)
    model = load_trained(target.adapter, target.model)[0] if target.adapter else load_model(target.model)[0].eval()
    first, runs = next(iter(sets)), {}
    if p.baseline and target.adapter:
        prompter, rows = baseline_prompter(target.prompter), spread(sets[first], p.baseline_rows)
        with model.disable_adapter():
            for name, grammar in zip(BASELINE_SETS, (None, grammars[CONSTRAINED]), strict=True):
                runs[name] = evaluate_rows(model, prompter, rows, target.skills, p, name, grammar)
    model = merge_adapter(model)
    for name, rows in sets.items():
        runs[name] = evaluate_rows(model, target.prompter, rows, target.skills, p, name, grammars[default])
    chosen = spread(list(range(len(sets[first]))), p.compare_rows)
    runs[default] = [runs[first][i] for i in chosen]
    runs[other] = evaluate_rows(
        model, target.prompter, [sets[first][i] for i in chosen], target.skills, p, f"{first} {other}", grammars[other]
    )
    details = {name: compute_metrics(preds) for name, preds in runs.items()}
    metrics = headline(details, first)
    details["evaluated"] = target.record() | {"decoding": default}
    return EvalResult(metrics, details, {first: runs.pop(first), **runs}, time.perf_counter() - began)


METRICS_FILE = "metrics.json"
DETAILS_FILE = "details.json"
CONFUSION_FILE = "confusion.json"  # DVC plot data of the headline set: [{"actual", "predicted"}]


def predictions_file(name: str, first: bool) -> str:
    """``predictions.jsonl`` for the headline set, ``<name>_predictions.jsonl`` for the others."""
    return "predictions.jsonl" if first else f"{name}_predictions.jsonl"


def write_outputs(out_dir: str | Path, result: EvalResult) -> None:
    """metrics.json (headline numbers), details.json, one predictions file per set, confusion.json.

    The baseline's files are written empty when it did not run (``eval.baseline: false``, a model alone): they are
    outputs of the DVC stage, and metrics.json then has no ``baseline_*`` key.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).write_text(json.dumps(result.metrics, indent=2) + "\n")
    (out / DETAILS_FILE).write_text(json.dumps(result.details, indent=2) + "\n")
    for i, (name, preds) in enumerate(result.predictions.items()):
        write_jsonl(out / predictions_file(name, i == 0), prediction_records(preds))
    for name in BASELINE_SETS:
        if name not in result.predictions:
            (out / predictions_file(name, False)).write_text("")
    first = next(iter(result.predictions.values()))
    (out / CONFUSION_FILE).write_text(json.dumps(confusion_rows(first), indent=1) + "\n")


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
    """Every metric into the run summary; per set a predictions table and a confusion matrix (with ``invalid``).
    The headline set's keys are ``eval/...``, the others' ``<set>/...``."""
    import wandb

    run.summary.update(result.metrics)
    run.summary.update({"details": result.details})
    for i, (name, preds) in enumerate(result.predictions.items()):
        prefix = "eval" if i == 0 else name
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


def summary(result: EvalResult) -> str:
    """One line per set: ``test: ast 0.93, exact 0.91, valid 0.99, other F1 0.95, p50 41 ms, 24.3 utt/s, n 120``."""
    return "\n".join(
        f"{name}: ast {m['ast_accuracy']:.3f}, exact {m['exact_match']:.3f}, valid {m['valid_rate']:.3f}, "
        f"other F1 {m['other_f1']:.3f}, p50 {m['latency_ms_p50']:.0f} ms, {m['throughput']:.1f} utt/s, n {m['n']}"
        for name, m in result.details.items()
        if "ast_accuracy" in m
    )
