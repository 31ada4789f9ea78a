import json
import subprocess
import sys

import pytest
from tiny_adapter import SKILLS, TINY_TEST, build_tiny_adapter

from skillcall.calls import CallError, validate
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
    valid = json.loads(as_json("rain in Oslo?", parse_generation("weather(location='Oslo')", SKILLS), "x", 3.14159))
    assert valid == {
        "utterance": "rain in Oslo?",
        "call": 'weather(location="Oslo")',
        "skill": "weather",
        "arguments": {"location": "Oslo"},
        "valid": True,
        "latency_ms": 3.14,
    }
    raw = 'music(genre="jazz")'
    invalid = json.loads(as_json("play jazz", parse_generation(raw, SKILLS), raw, 1.0))
    assert (invalid["call"], invalid["skill"], invalid["arguments"], invalid["valid"]) == (raw, "music", {}, False)


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory, tiny_model_dir):
    return build_tiny_adapter(tmp_path_factory, tiny_model_dir)


def predict(args: list[str], stdin: str | None = None) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "skillcall.predict", *args], input=stdin, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def parses_or_is_marked_invalid(line: str) -> bool:
    if line.startswith("# invalid ("):
        return True
    try:
        return str(validate(line, SKILLS)) == line
    except CallError:
        return False


@pytest.mark.slow
def test_predict_cli_one_line_per_utterance_from_args_and_stdin(tiny_adapter):
    utterances = [u for u, _, _ in TINY_TEST[:3]]
    lines = predict(["--adapter", str(tiny_adapter), "--max-new-tokens", "8", *utterances])
    assert len(lines) == 3 and all(map(parses_or_is_marked_invalid, lines)), lines
    assert predict(["--adapter", str(tiny_adapter), "--max-new-tokens", "8"], "\n".join(utterances) + "\n\n") == lines


@pytest.mark.slow
def test_predict_cli_json(tiny_adapter):
    utterances = [u for u, _, _ in TINY_TEST[:2]]
    lines = predict(["--adapter", str(tiny_adapter), "--json", "--max-new-tokens", "8", *utterances])
    records = [json.loads(line) for line in lines]
    assert [r["utterance"] for r in records] == utterances
    for r in records:
        assert set(r) == {"utterance", "call", "skill", "arguments", "valid", "latency_ms"}
        assert r["latency_ms"] > 0
        if r["valid"]:
            assert str(validate(r["call"], SKILLS)) == r["call"] and r["skill"] == r["call"].split("(")[0]
        else:  # the raw generation, never a crash
            assert isinstance(r["call"], str) and r["arguments"] == {}
