import json

import pytest
from tiny_adapter import (
    SKILLS,
    TINY_TEST,
    WRONG_ANSWER,
    WRONG_UTTERANCE,
    build_memorised_adapter,
    build_tiny_adapter,
    memorised_rows,
    tiny_rows,
)

from skillcall.evaluate import (
    HEADLINE,
    INVALID,
    OTHERS,
    compute_metrics,
    confusion_rows,
    precision_recall_f1,
    read_split,
    read_test_file,
    score,
)
from skillcall.generation import generate, stopping_criteria
from skillcall.models import merge_adapter


def scored(gold: str, raw: str, source: str = "hand", latency_ms: float = 10.0):
    return score("utterance", gold, raw, SKILLS, source, latency_ms)


def test_score_valid_correct_prediction_is_canonicalised():
    p = scored("weather(location='Oslo')", "weather(location='Oslo')\nAnything else?")
    assert p.gold == 'weather(location="Oslo")'
    assert (p.valid, p.correct, p.prediction, p.predicted_skill, p.name) == (
        True,
        True,
        'weather(location="Oslo")',
        "weather",
        "weather",
    )


def test_score_invalid_generations_are_marked_not_crashed():
    prose = scored("other()", "I'm sorry, I can't help with that.")
    assert (prose.valid, prose.correct, prose.predicted_skill, prose.error, prose.name) == (
        False,
        False,
        INVALID,
        "not_a_call",
        "",
    )
    assert prose.prediction == prose.extracted == "I'm sorry, I can't help with that."
    unknown = scored("other()", 'capital(country="France")')
    assert (unknown.valid, unknown.error, unknown.name, unknown.predicted_skill) == (
        False,
        "unknown_skill",
        "capital",
        INVALID,
    )
    bad_value = scored('notes(action="add", note="milk")', 'notes(action="delete", note="milk")')
    # the right skill name with an invalid value: counts for name_accuracy, not for validity
    assert (bad_value.valid, bad_value.error, bad_value.name) == (False, "invalid_value", "notes")
    assert scored("other()", "").extracted == ""


def test_empty_argument_equals_absent_and_order_does_not_matter():
    assert scored("weather()", "weather(location='')").correct
    assert scored('notes(action="add", note="milk")', "notes(note='milk', action='add')").correct
    assert not scored("weather()", 'weather(location="Oslo")').correct


def test_exact_match_is_the_canonical_string_ast_accuracy_compares_strings_the_bfcl_way():
    preds = [
        scored('weather(location="Oslo")', 'weather(location="Oslo")'),  # exact
        scored('weather(location="Oslo")', "weather(location='Oslo')"),  # same canonical call, other quotes
        scored("weather()", "weather(location='')"),  # same canonical call, empty arg
        scored('weather(location="New York")', "weather(location='new-york')"),  # BFCL-equal, not byte-equal
        scored('weather(location="Oslo")', "weather(location='Bergen')"),  # other value
        scored('timer(duration="5 minutes")', "Sure! timer for five minutes"),  # invalid
    ]
    m = compute_metrics(preds)
    assert m["n"] == 6
    assert m["exact_match"] == 3 / 6
    assert m["ast_accuracy"] == 4 / 6
    assert m["valid_rate"] == 5 / 6
    assert m["name_accuracy"] == 5 / 6


def test_lenient_accuracy_is_gold_contained_in_raw_generation():
    preds = [
        scored("other()", "Sure: other() is what you want"),  # contained, but not a call on line 1
        scored('timer(duration="5 minutes")', 'timer(duration="5 minutes")\nAnything else?'),
        scored("weather()", "weather(location='')"),  # correct, but the gold string is not contained
    ]
    m = compute_metrics(preds)
    assert m["lenient_accuracy"] == pytest.approx(2 / 3)
    assert m["ast_accuracy"] == pytest.approx(2 / 3)
    assert [p.correct for p in preds] == [False, True, True]


def test_other_precision_recall_f1():
    preds = [
        scored("other()", "other()"),  # TP
        scored("other()", "weather()"),  # FN
        scored("other()", "blah"),  # FN (invalid is not a predicted other)
        scored("weather()", "other()"),  # FP
        scored("weather()", "weather()"),  # TN
    ]
    assert precision_recall_f1(preds) == pytest.approx((0.5, 1 / 3, 0.4))
    m = compute_metrics(preds)
    assert (m["other_precision"], m["other_recall"], m["other_f1"]) == pytest.approx((0.5, 1 / 3, 0.4))


def test_other_metrics_edge_cases_without_positives():
    no_predicted = [scored("other()", "weather()"), scored("weather()", "weather()")]
    assert precision_recall_f1(no_predicted) == (0.0, 0.0, 0.0)
    no_gold = [scored("weather()", "other()"), scored("timer()", "timer()")]
    assert precision_recall_f1(no_gold) == (0.0, 0.0, 0.0)
    neither = [scored("weather()", "weather()")]
    assert precision_recall_f1(neither) == (0.0, 0.0, 0.0)
    all_right = [scored("other()", "other()")]
    assert precision_recall_f1(all_right) == (1.0, 1.0, 1.0)


def test_per_skill_per_source_latency_and_throughput():
    preds = [
        scored("other()", "other()", "hand", 10.0),
        scored("other()", "weather()", "augmented", 20.0),
        scored("weather()", "weather()", "augmented", 30.0),
        scored("weather()", "weather()", "hand", 40.0),
    ]
    m = compute_metrics(preds)
    assert m["per_skill"] == {"other": {"accuracy": 0.5, "count": 2}, "weather": {"accuracy": 1.0, "count": 2}}
    assert m["per_source"] == {"augmented": {"accuracy": 0.5, "count": 2}, "hand": {"accuracy": 1.0, "count": 2}}
    assert m["latency_ms_p50"] == 25.0
    assert m["latency_ms_p95"] == pytest.approx(38.5)
    assert m["throughput"] == pytest.approx(4 / 0.1)


def test_compute_metrics_refuses_an_empty_evaluation():
    with pytest.raises(ValueError, match="nothing to evaluate"):
        compute_metrics([])


def test_confusion_rows_have_an_invalid_column():
    preds = [scored("other()", "other()"), scored("weather()", "nonsense"), scored("timer()", "weather()")]
    assert confusion_rows(preds) == [
        {"actual": "other", "predicted": "other"},
        {"actual": "weather", "predicted": INVALID},
        {"actual": "timer", "predicted": "weather"},
    ]


RECORDS = [("what's the weather in Oslo", "weather(location='Oslo')"), ("thanks", "other()")]


@pytest.mark.parametrize("keys", [("user", "answer"), ("input", "output")])
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.parametrize("quote", ["'", '"'])
def test_read_test_file_formats_keys_and_quote_styles(tmp_path, keys, fmt, quote):
    records = [{keys[0]: u, keys[1]: a.replace("'", quote)} for u, a in RECORDS]
    path = tmp_path / f"test.{fmt}"
    text = json.dumps(records) if fmt == "json" else "".join(json.dumps(r) + "\n" for r in records)
    path.write_text(text)
    rows, report = read_test_file(path, SKILLS)
    assert [(r.user, r.answer, r.skill, r.source) for r in rows] == [
        ("what's the weather in Oslo", 'weather(location="Oslo")', "weather", "test_file"),
        ("thanks", "other()", "other", "test_file"),
    ]
    assert report["skipped"] == 0 and report["unknown_skills"] == {}


def test_read_test_file_reports_unknown_skills_instead_of_crashing(tmp_path):
    path = tmp_path / "otto.jsonl"
    records = [
        {"input": "play some jazz", "output": "music(genre='jazz')"},
        {"input": "hey", "output": "other()"},
        {"input": "play rock", "output": "music(genre='rock')"},
        {"input": "lights off", "output": "lights()"},
        {"input": "remind me", "output": "notes(action='remind')"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    rows, report = read_test_file(path, SKILLS)
    assert [r.answer for r in rows] == ["other()"]
    assert report["read"] == 5 and report["skipped"] == 4
    assert report["unknown_skills"] == {"lights": 1, "music": 2}
    assert any(f"{path}:5" in w and "invalid_value" in w for w in report["warnings"])


def test_read_split_reads_dataset_rows_and_rejects_other_splits(tmp_path):
    row = {"user": "hi", "answer": "other()", "skill": "other", "source": "hand", "file": "examples/other.txt:3"}
    (tmp_path / "val.jsonl").write_text(json.dumps(row) + "\n")
    assert [r.answer for r in read_split(tmp_path, "val")] == ["other()"]
    with pytest.raises(ValueError, match="eval.split"):
        read_split(tmp_path, "train")


# --- slow: the real stage on a tiny model with a tiny adapter trained by skillcall.train -----------------------


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory, tiny_model_dir):
    return build_tiny_adapter(tmp_path_factory, tiny_model_dir)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["chat", "raw"])
def test_batched_generation_with_shared_prefix_equals_one_by_one(tiny_adapter, mode):
    from skillcall.models import load_trained
    from skillcall.prompting import Prompter, read_raw_template

    model, prompter, _ = load_trained(tiny_adapter)
    model = merge_adapter(model)
    if mode == "raw":  # another prompt layout: the shared prefix ends elsewhere
        prompter = Prompter("raw", prompter.system, prompter.tokenizer, read_raw_template("prompts/llama2.txt"))
    users = [u for u, _, _ in TINY_TEST] + ["x", "what is the weather going to be like in San Francisco tomorrow"]
    one_by_one = generate(model, prompter, users, batch_size=1, max_new_tokens=8, share_prefix=False)
    batched = generate(model, prompter, users, batch_size=3, max_new_tokens=8)
    assert [g.text for g in batched] == [g.text for g in one_by_one]
    assert all(g.latency_ms > 0 for g in batched)
    assert all("\n" not in g.text and prompter.end_of_turn not in g.text for g in batched)


def test_stopping_criteria_stops_each_row_on_multi_token_text_after_the_prompt(smollm2_tokenizer):
    import torch

    tok = smollm2_tokenizer
    prompt = tok("[INST] line one\nline two </s> [/INST]", add_special_tokens=False)["input_ids"]
    answers = ["weather() </s>", "weather()", "other()\nmore"]
    ids = [tok(a, add_special_tokens=False)["input_ids"] for a in answers]
    assert len(tok("</s>", add_special_tokens=False)["input_ids"]) > 1  # not an eos token id for this tokenizer
    width = max(map(len, ids))
    batch = torch.tensor([prompt + [tok.pad_token_id] * (width - len(a)) + a for a in ids])
    (criterion,) = stopping_criteria(tok, len(prompt), ["</s>", "\n"])
    assert criterion(batch, None).tolist() == [True, False, True]


def eval_stage(argv):
    from stages.eval import main

    main(argv)


@pytest.fixture(scope="module")
def memorised_adapter(tmp_path_factory, tiny_model_dir):
    return build_memorised_adapter(tmp_path_factory, tiny_model_dir)


def jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_eval_stage_scores_known_answers_exactly(memorised_adapter, tmp_path, wandb_offline):
    """The memorised adapter answers TINY_TEST right except "ok cool" (gold other(), it says weather(location="Rome")):
    every number through the stage follows from that."""
    from dvc_repo import copy_repo, run
    from wandb_files import run_dirs, summary

    from skillcall.dataset import write_jsonl

    dataset, holdout, out = tmp_path / "dataset", tmp_path / "holdout", tmp_path / "eval"
    dataset.mkdir(), holdout.mkdir()
    write_jsonl(dataset / "test.jsonl", tiny_rows())
    (holdout / "h.jsonl").write_text(
        json.dumps({"user": WRONG_UTTERANCE, "answer": "other()"})
        + "\n"
        + json.dumps({"user": "thanks a lot", "answer": "other()"})
        + "\n"
    )
    eval_stage(
        ["--adapter", str(memorised_adapter), "--dataset", str(dataset), "--holdout", str(holdout), "--out", str(out)]
    )

    metrics = json.loads((out / "metrics.json").read_text())
    others = {f"{name}_{k}" for name, keys in OTHERS.items() for k in keys}
    assert set(metrics) == set(HEADLINE) | others and all(isinstance(v, float) for v in metrics.values())  # flat
    assert metrics["constrained_ast_accuracy"] == metrics["ast_accuracy"] == 0.8  # the default setting: bare keys
    assert (metrics["exact_match"], metrics["valid_rate"]) == (0.8, 1.0)
    assert metrics["other_f1"] == pytest.approx(2 / 3)  # precision 1/1, recall 1/2
    assert (metrics["holdout_ast_accuracy"], metrics["holdout_valid_rate"]) == (0.5, 1.0)
    assert metrics["latency_ms_p50"] <= metrics["latency_ms_p95"]

    details = json.loads((out / "details.json").read_text())
    assert (details["holdout"]["n"], details["baseline"]["n"], details["test"]["n"]) == (2, 5, 5)
    assert (details["test"]["name_accuracy"], details["baseline"]["ast_accuracy"]) == (
        0.8,
        metrics["baseline_ast_accuracy"],
    )
    assert details["test"]["per_skill"] == {
        "other": {"accuracy": 0.5, "count": 2},
        "timer": {"accuracy": 1.0, "count": 1},
        "weather": {"accuracy": 1.0, "count": 2},
    }
    assert details["test"]["confusion"] == {
        "other": {"other": 1, "weather": 1},
        "timer": {"timer": 1},
        "weather": {"weather": 2},
    }
    assert (details["test"]["other_precision"], details["test"]["other_recall"]) == (1.0, 0.5)
    assert details["test"]["per_source"] == {
        "augmented": {"accuracy": 2 / 3, "count": 3},
        "hand": {"accuracy": 1.0, "count": 2},
    }
    assert details["evaluated"] == {
        "model": json.loads((memorised_adapter / "training.json").read_text())["base_model"],
        "adapter": str(memorised_adapter),
        "prompt": {"source": "adapter", "mode": "chat", "format": "chatml", "other_bias": 0.0, "copy_bias": 0.0},
        "decoding": "constrained",
    }
    rows = jsonl(out / "predictions.jsonl")
    assert [r["utterance"] for r in rows] == [u for u, _, _ in TINY_TEST]
    assert [r["prediction"] for r in rows] == [r.answer for r in memorised_rows()]
    assert [r["correct"] for r in rows] == [r.user != WRONG_UTTERANCE for r in tiny_rows()]
    assert [r["prediction"] for r in jsonl(out / "holdout_predictions.jsonl")] == [WRONG_ANSWER, "other()"]
    assert len(jsonl(out / "baseline_predictions.jsonl")) == 5
    for name in ("constrained", "unconstrained", "baseline", "baseline_constrained"):
        assert len(jsonl(out / f"{name}_predictions.jsonl")) == 5
    confusion = json.loads((out / "confusion.json").read_text())
    assert [(c["actual"], c["predicted"]) for c in confusion] == [
        (a.split("(")[0], "weather" if u == WRONG_UTTERANCE else a.split("(")[0]) for u, a, _ in TINY_TEST
    ]

    (run_dir,) = run_dirs(wandb_offline)
    logged = summary(run_dir)
    assert logged["ast_accuracy"] == 0.8 and logged["holdout_ast_accuracy"] == 0.5
    tables = {p.name.split("_")[0] for p in (run_dir / "files" / "media" / "table").rglob("*.table.json")}
    assert {"predictions", "confusion"} <= tables
    images = {p.name.rsplit("_", 2)[0] for p in (run_dir / "files" / "media" / "images" / "eval").glob("*.png")}
    assert images == {"per_skill", "confusion"}  # the static plots, as W&B images
    for png in ("per_skill.png", "confusion.png"):
        assert (out / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    per_skill = {r["skill"]: r for r in json.loads((out / "per_skill.json").read_text())}  # the DVC bar plot's data
    assert {k: (r["accuracy"], r["count"], r["holdout"]) for k, r in per_skill.items()} == {
        "other": (0.5, 2, 0.5),
        "timer": (1.0, 1, None),
        "weather": (1.0, 2, None),
    }

    repo = copy_repo(tmp_path / "repo")  # the dvc.yaml plot definition renders this file
    (repo / "eval").mkdir(exist_ok=True)
    (repo / "eval" / "confusion.json").write_text((out / "confusion.json").read_text())
    run(["dvc", "plots", "show", "eval/confusion.json", "-o", "plots"], repo)
    html = (repo / "plots" / "index.html").read_text()
    assert "predicted" in html and "actual" in html


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_eval_test_file_outside_dvc_reports_unknown_skills(memorised_adapter, tmp_path, wandb_offline, fmt):
    records = [{"input": u, "output": a} for u, a, _ in TINY_TEST[:3]] + [{"input": "play jazz", "output": "music()"}]
    if fmt == "jsonl":  # the other key names and quote style
        records = [{"user": r["input"], "answer": r["output"].replace("'", '"')} for r in records]
    path = tmp_path / f"otto.{fmt}"
    path.write_text(json.dumps(records) if fmt == "json" else "".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    eval_stage(["--test-file", str(path), "--adapter", str(memorised_adapter), "--out", str(out)])
    metrics, details = (json.loads((out / name).read_text()) for name in ("metrics.json", "details.json"))
    assert (details["test"]["n"], metrics["ast_accuracy"]) == (3, 1.0)  # the first three are memorised right
    assert not any(k.startswith("holdout") for k in metrics)  # no holdout set given
    assert details["test_file"]["unknown_skills"] == {"music": 1} and details["test_file"]["skipped"] == 1
    assert details["test"]["per_source"] == {"test_file": {"accuracy": 1.0, "count": 3}}
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow
def test_baseline_and_compare_rows_score_a_spread_subset(memorised_adapter):
    from dataclasses import replace

    from skillcall.evaluate import EvalParams, evaluate_target, resolve_target

    p = EvalParams(batch_size=4, max_new_tokens=8, baseline=True, split="test", baseline_rows=2, compare_rows=2)
    rows = memorised_rows()
    result = evaluate_target(resolve_target(memorised_adapter, None, p), {"test": rows}, p)
    chosen = [0, len(rows) // 2]  # every len/2-th row
    for name in ("baseline", "baseline_constrained", "constrained", "unconstrained"):
        assert [x.utterance for x in result.predictions[name]] == [rows[i].user for i in chosen]
    assert result.details["test"]["n"] == len(rows)  # the headline set is scored whole
    assert result.predictions["constrained"] == [result.predictions["test"][i] for i in chosen]  # not decoded twice
    everything = evaluate_target(
        resolve_target(memorised_adapter, None, p), {"test": rows}, replace(p, baseline_rows=0, compare_rows=0)
    )
    assert everything.details["baseline"]["n"] == everything.details["unconstrained"]["n"] == len(rows)
