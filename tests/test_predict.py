import json
import subprocess
import sys

import pytest
from tiny_adapter import SKILLS, TINY_TEST, build_memorised_adapter, memorised_rows

from skillcall.evaluate import parse_generation
from skillcall.predict import as_json, format_line


def test_format_line_prints_the_canonical_call_or_marks_the_raw_text_invalid():
    raw = "notes(note='milk', action='add')"
    assert format_line(parse_generation(raw, SKILLS), raw) == 'notes(action="add", note="milk")'
    raw = "Sure! Here is\nyour note"
    assert format_line(parse_generation(raw, SKILLS), raw) == '# invalid (not_a_call): "Sure! Here is\\nyour note"'
    raw = 'notes(action="delete")'
    assert format_line(parse_generation(raw, SKILLS), raw).startswith("# invalid (invalid_value): ")


def test_as_json_fields_for_valid_and_invalid_generations():
    valid = json.loads(as_json("rain in Oslo?", parse_generation("weather(location='Oslo')", SKILLS), "x", 3.14159, 4))
    assert valid == {
        "utterance": "rain in Oslo?",
        "call": 'weather(location="Oslo")',
        "skill": "weather",
        "arguments": {"location": "Oslo"},
        "valid": True,
        "batch_ms": 3.14,
        "batch_size": 4,
    }
    raw = 'music(genre="jazz")'
    invalid = json.loads(as_json("play jazz", parse_generation(raw, SKILLS), raw, 1.0, 1))
    assert (invalid["call"], invalid["skill"], invalid["arguments"], invalid["valid"]) == (raw, "music", {}, False)


@pytest.fixture(scope="module")
def memorised_adapter(tmp_path_factory, tiny_model_dir):
    return build_memorised_adapter(tmp_path_factory, tiny_model_dir)


def predict(args: list[str], stdin: str | None = None) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "skillcall.predict", *args], input=stdin, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.slow
def test_predict_cli_one_line_per_utterance_from_args_and_stdin(memorised_adapter):
    utterances = [u for u, _, _ in TINY_TEST]
    lines = predict(["--adapter", str(memorised_adapter), *utterances])
    assert lines == [r.answer for r in memorised_rows()]  # "ok cool" -> the wrongly memorised weather call
    assert predict(["--adapter", str(memorised_adapter)], "\n".join(utterances) + "\n\n") == lines


@pytest.mark.slow
def test_predict_other_bias_moves_answers_to_and_from_other(memorised_adapter):
    utterances = [u for u, _, _ in TINY_TEST]
    memorised = [r.answer for r in memorised_rows()]
    assert predict(["--adapter", str(memorised_adapter), "--other-bias=0", *utterances]) == memorised
    assert predict(["--adapter", str(memorised_adapter), "--other-bias=-1e4", *utterances]) == ["other()"] * 5
    lowered = predict(["--adapter", str(memorised_adapter), "--other-bias=1e4", *utterances])
    assert memorised.count("other()") == 1 and "other()" not in lowered  # "thanks a lot" is no longer other()
    assert [a for m, a in zip(memorised, lowered, strict=True) if m != "other()"] == [
        m for m in memorised if m != "other()"
    ]  # the calls the model made anyway are untouched


@pytest.mark.slow
def test_predict_cli_json(memorised_adapter):
    utterances = [u for u, _, _ in TINY_TEST[:3]]
    lines = predict(["--adapter", str(memorised_adapter), "--json", "--batch-size", "2", *utterances])
    records = [json.loads(line) for line in lines]  # one JSON object per line
    assert [r["utterance"] for r in records] == utterances
    assert [(r["call"], r["skill"], r["arguments"], r["valid"]) for r in records] == [
        ('weather(location="Rome")', "weather", {"location": "Rome"}, True),
        ('timer(duration="3 minutes")', "timer", {"duration": "3 minutes"}, True),
        ("other()", "other", {}, True),
    ]
    # the timing is the batch's, named as such: the first two utterances share one batch, the third is alone
    assert [r["batch_size"] for r in records] == [2, 2, 1]
    assert records[0]["batch_ms"] == records[1]["batch_ms"] != records[2]["batch_ms"]
    assert all(
        set(r) == {"utterance", "call", "skill", "arguments", "valid", "batch_ms", "batch_size"} for r in records
    )
    assert all(r["batch_ms"] > 0 for r in records)
