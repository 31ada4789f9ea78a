import json

import pytest

from skillcall.evaluate import (
    INVALID,
    compute_metrics,
    confusion_rows,
    precision_recall_f1,
    read_split,
    read_test_file,
    score,
)
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


def test_exact_match_is_the_raw_extracted_string_ast_accuracy_the_canonical_call():
    preds = [
        scored('weather(location="Oslo")', 'weather(location="Oslo")'),  # exact
        scored('weather(location="Oslo")', "weather(location='Oslo')"),  # same call, other quotes
        scored("weather()", "weather(location='')"),  # same call, empty arg
        scored('timer(duration="5 minutes")', "Sure! timer for five minutes"),  # invalid
    ]
    m = compute_metrics(preds)
    assert m["n"] == 4
    assert m["exact_match"] == 0.25
    assert m["ast_accuracy"] == 0.75
    assert m["valid_rate"] == 0.75
    assert m["name_accuracy"] == 0.75


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
