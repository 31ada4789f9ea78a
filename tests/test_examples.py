import json
from collections import Counter
from pathlib import Path

import pytest

from skillcall.examples import (
    ExampleError,
    format_example_file,
    parse_example_text,
    read_examples_dir,
    read_pairs_file,
)
from skillcall.skills import Param, parse_signature

REPO = Path(__file__).resolve().parents[1]
GOOD = """#### Prompt:
weather(location="[location]") ask for the weather at a location.
If there's no location the location is assumed to be where the user is.

#### Prompt Examples:

### User: How hot is it in Lisbon
### Assistant: weather(location='Lisbon')

#### Examples:

### User: do I need an umbrella today
### Assistant: weather(location="")

User: what's it like outside in Oslo
Assistant: weather(location="Oslo")
"""


def test_good_file():
    f = parse_example_text(GOOD, "examples/weather.txt")
    assert f.skill.name == "weather"
    assert f.skill.params == (Param("location", placeholder="location"),)
    assert f.skill.description.startswith("ask for the weather") and f.skill.description.endswith("where the user is.")
    assert [(p.user, p.answer, p.file) for p in f.prompt_examples] == [
        ("How hot is it in Lisbon", 'weather(location="Lisbon")', "examples/weather.txt:7")
    ]
    # otto's time-file variant without ### is parsed, not dropped
    assert [(p.answer, p.file) for p in f.examples] == [
        ("weather()", "examples/weather.txt:12"),
        ('weather(location="Oslo")', "examples/weather.txt:15"),
    ]


def test_closed_value_set_signature():
    skill = parse_signature('notes(action="add|list", note="[note]") notes')
    assert skill.params[0].choices == ("add", "list")
    assert skill.signature == 'notes(action="add|list", note="[note]")'


def _broken(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.mark.parametrize(
    "text, line, reason",
    [
        (_broken("#### Examples:", "#### Exemples:"), 10, "unknown or repeated header"),
        (_broken("### Assistant: weather(location='Lisbon')\n", ""), 7, "without a following 'Assistant:'"),
        (_broken("### User: How hot is it in Lisbon\n", ""), 7, "without a preceding 'User:'"),
        (_broken("weather(location='Lisbon')", "weather(location='Lisbon'"), 7, "not_a_call"),
        (_broken("weather(location='Lisbon')", "forecast(location='Lisbon')"), 7, "unknown_skill"),
        (_broken("weather(location='Lisbon')", "weather(city='Lisbon')"), 7, "unknown_parameter"),
        (_broken("User: what's it like", "Usr: what's it like"), 15, "expected '### User: ...'"),
        (_broken('weather(location="[location]")', "weather location"), 2, "expected a signature"),
        (_broken("#### Prompt:", "#### Prompts:"), 1, "expected '#### Prompt:'"),
        (_broken("#### Prompt Examples:\n", ""), 6, "outside a '#### Prompt Examples:'"),
    ],
)
def test_malformed_constructs_name_file_and_line(text, line, reason):
    with pytest.raises(ExampleError) as e:
        parse_example_text(text, "examples/weather.txt")
    assert str(e.value).startswith(f"examples/weather.txt:{line}: ")
    assert reason in str(e.value)


def test_closed_value_set_violation(tmp_path):
    text = '#### Prompt:\nnotes(action="add|list", note="[note]") notes\n\n#### Examples:\n\n### User: x\n### Assistant: notes(action="remove")\n'
    with pytest.raises(ExampleError, match=r"notes.txt:6: invalid answer \(invalid_value\)"):
        parse_example_text(text, "notes.txt")


def test_lenient_reports_every_skipped_line():
    text = _broken("User: what's it like", "Usr: what's it like").replace(
        "weather(location='Lisbon')", "weather(city='Lisbon')"
    )
    f = parse_example_text(text, "w.txt", lenient=True)
    assert [p.answer for p in f.pairs] == ["weather()"]
    assert len(f.warnings) == 3  # bad answer at 7, bad line at 15, dangling Assistant at 16
    assert [w.split(": ")[0] for w in f.warnings] == ["w.txt:7", "w.txt:15", "w.txt:16"]


def test_round_trip():
    f = parse_example_text(GOOD, "a.txt")
    again = parse_example_text(format_example_file(f.skill, f.prompt_examples, f.examples), "b.txt")
    assert again.skill == f.skill
    assert [(p.user, p.answer) for p in again.pairs] == [(p.user, p.answer) for p in f.pairs]
    assert format_example_file(again.skill, again.prompt_examples, again.examples) == format_example_file(
        f.skill, f.prompt_examples, f.examples
    )


def test_pairs_file_formats(tmp_path):
    skills = {"weather": parse_example_text(GOOD, "w.txt").skill}
    (tmp_path / "a.json").write_text(json.dumps([{"input": "weather in Oslo", "output": "weather(location='Oslo')"}]))
    (tmp_path / "b.jsonl").write_text(json.dumps({"user": "weather here", "answer": 'weather(location="")'}) + "\n")
    assert [p.answer for p in read_pairs_file(tmp_path / "a.json", skills)[0]] == ['weather(location="Oslo")']
    assert [p.answer for p in read_pairs_file(tmp_path / "b.jsonl", skills)[0]] == ["weather()"]
    (tmp_path / "c.jsonl").write_text('{"user": "x", "answer": "weather()"}\n{"user": "y", "answer": "timer()"}\n')
    with pytest.raises(ExampleError, match=r"c.jsonl:2: invalid answer \(unknown_skill\)"):
        read_pairs_file(tmp_path / "c.jsonl", skills)
    pairs, warnings = read_pairs_file(tmp_path / "c.jsonl", skills, lenient=True)
    assert len(pairs) == 1 and len(warnings) == 1 and "c.jsonl:2" in warnings[0]


SKILL_NAMES = ["news", "math", "notes", "openai", "runapp", "story", "timecheck", "timer", "weather", "other"]


def test_shipped_examples_parse_strictly_and_meet_minimums():
    skills, files = read_examples_dir(REPO / "examples")
    assert sorted(skills) == sorted(SKILL_NAMES)
    counts = Counter(p.skill for f in files for p in f.pairs)
    for name in SKILL_NAMES:
        assert counts[name] >= (200 if name == "other" else 30), (name, counts[name])
    notes = {p.answer.split(",")[0] for f in files for p in f.pairs if p.skill == "notes"}
    assert {'notes(action="add"', 'notes(action="list")'} <= notes
    assert any(p.answer == "weather()" for f in files for p in f.pairs)
    assert any(p.answer == "timecheck()" for f in files for p in f.pairs)
