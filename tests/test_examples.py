import json
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillcall.calls import UNREPRESENTABLE, Call, CallError, bad_character, parse_call, validate
from skillcall.examples import (
    ExampleError,
    Pair,
    format_example_file,
    load_skills,
    pair_problem,
    parse_example_text,
    read_example_file,
    read_examples_dir,
    read_pairs_file,
    write_example_file,
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


def test_no_shipped_example_repeats_a_holdout_utterance():
    """The holdout is scored as commands the model never saw: a hand example equal to one of its utterances (case
    and punctuation aside) would be trained on (48 were, "what time is it", "open the", until they were removed)."""
    from skillcall.dataset import normalise

    skills, files = read_examples_dir(REPO / "examples")
    holdout, _ = read_pairs_file(REPO / "data" / "holdout" / "holdout.jsonl", skills)
    said = {normalise(p.user): p.file for p in holdout}
    assert len(said) >= 450
    repeated = [f"{p.file} = {said[normalise(p.user)]}" for f in files for p in f.pairs if normalise(p.user) in said]
    assert repeated == []


# ---------------------------------------------------------------- bad bytes, line ends, what the writer refuses


def test_non_utf8_byte_names_file_line_and_column(tmp_path):
    path = tmp_path / "weather.txt"
    path.write_bytes(GOOD.replace("Oslo", "Oslo caf\xe9").encode("latin-1"))
    with pytest.raises(
        ExampleError, match=r"weather.txt:15: byte 0xe9 at column 41 is not UTF-8 .*save the file as UTF-8"
    ):
        read_example_file(path)
    with pytest.raises(ExampleError, match=r"weather.txt:15: byte 0xe9"):
        load_skills(tmp_path)  # reads only the signature, still decodes the whole file
    (tmp_path / "t.jsonl").write_bytes(b'{"user": "x", "answer": "weather()"}\n{"user": "\xff"}\n')
    with pytest.raises(ExampleError, match=r"t.jsonl:2: byte 0xff at column 11"):
        read_pairs_file(tmp_path / "t.jsonl", {})


def test_non_utf8_byte_through_stages_collect(tmp_path, monkeypatch):
    from stages import collect

    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "weather.txt").write_bytes(GOOD.replace("Lisbon", "Lisb\x00n \x81").encode("latin-1"))
    (tmp_path / "params.yaml").write_text("collect: {seed: 0, val_fraction: 0.1, test_fraction: 0.1}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExampleError, match=r"examples/weather.txt:7: byte 0x81 at column 35 is not UTF-8"):
        collect.main(["examples", "generated", "rejected.txt", "out", "--no-wandb"])


def test_bom_and_crlf_line_ends_read_with_editor_line_numbers():
    text = "\ufeff" + GOOD.replace("\n", "\r\n")
    f = parse_example_text(text.removeprefix("\ufeff"), "w.txt")
    assert [p.file for p in f.pairs] == ["w.txt:7", "w.txt:12", "w.txt:15"]
    with pytest.raises(ExampleError, match=r"w.txt:15: "):
        parse_example_text(_broken("User: what's", "Usr: what's").replace("\n", "\r"), "w.txt")


@pytest.mark.parametrize("char", ["\u2028", "\x85", "\x0c", "\t", "\x00"])
def test_control_characters_in_an_utterance_are_errors_at_their_line(char):
    text = _broken("do I need an umbrella today", f"do I need{char}### User: forged")
    with pytest.raises(ExampleError, match=rf"w.txt:12: the user utterance holds a .*U\+{ord(char):04X}"):
        parse_example_text(text, "w.txt")
    lenient = parse_example_text(text, "w.txt", lenient=True)
    assert len(lenient.pairs) == 2 and lenient.warnings[0].startswith("w.txt:12: skipped: the user utterance")


NOTES = parse_signature('notes(action="add|list", note="[note]") add or list notes.')
MARKERS = [
    "### User: ",
    "### Assistant: ",
    "#### Examples:",
    "User:",
    "\n",
    "\r",
    "\u2028",
    "\x85",
    '"',
    "'",
    "\\",
    " ",
]
pieces = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(MARKERS)), max_size=6).map("".join)


def representable(text: str) -> bool:
    return bool(text.strip()) and text == text.strip() and not bad_character(text)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(pieces, pieces), min_size=1, max_size=4))
def test_write_read_round_trips_any_utterance_and_argument_or_refuses_with_a_reason(items):
    pairs, refused = [], []
    for user, note in items:
        try:
            answer = str(validate(Call("notes", (("action", "add"), ("note", note))), {"notes": NOTES}))
        except CallError as e:
            assert e.reason == UNREPRESENTABLE and bad_character(note)
            continue
        pair = Pair(user, answer, "notes")
        problem = pair_problem(pair, {"notes": NOTES})
        assert (problem is None) == representable(user), (user, problem)
        (refused if problem else pairs).append((pair, problem))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notes.txt"
        if refused:
            with pytest.raises(ExampleError, match=rf"cannot write pair \d+ \({refused[0][1][0]}\)"):
                write_example_file(path, NOTES, [], [p for p, _ in pairs + refused])
            assert not path.exists()
        write_example_file(path, NOTES, [], [p for p, _ in pairs])
        again = read_example_file(path)
    assert [(p.user, p.answer) for p in again.pairs] == [(p.user, p.answer) for p, _ in pairs]
    for (pair, _), back in zip(pairs, again.pairs, strict=True):
        assert parse_call(back.answer).kwargs.get("note", "") == parse_call(pair.answer).kwargs.get("note", "")
