"""The generate stage: offline augmentation, the openai backend against a real local HTTP server, the stage CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from fake_openai import KEY, completion, serving
from hypothesis import given, settings
from hypothesis import strategies as st

from skillcall.augment import MathSlot, duration_forms, load_values
from skillcall.calls import UNREPRESENTABLE, bad_character, parse_call, validate
from skillcall.dataset import normalise
from skillcall.examples import Pair, example_paths, read_example_file
from skillcall.generate import (
    DEFAULT_BASE_URL,
    GenerateError,
    GenerateParams,
    OpenAIParams,
    Rejected,
    candidates,
    check_completion,
    generate,
    resolve_base_url,
    tool_schema,
    write_generated,
)
from skillcall.skills import parse_signature

REPO = Path(__file__).resolve().parents[1]
PROMPTS = REPO / "prompts"

HAND = {
    "weather": (
        'weather(location="[location]") ask for the weather at a location.',
        [
            ("what's the weather in Lisbon", 'weather(location="Lisbon")'),
            ("um is it raining in new york", 'weather(location="New York")'),
            ("could you check the weather for me please", "weather()"),
            ("Will it snow in Denver this weekend?", 'weather(location="Denver")'),
        ],
    ),
    "timer": (
        'timer(duration="[duration]") set a timer. The duration is written with digits and a unit.',
        [
            ("set a timer for twenty five minutes", 'timer(duration="25 minutes")'),
            ("Set a 20 minute timer.", 'timer(duration="20 minutes")'),
            ("can you set a timer for an hour and a half", 'timer(duration="1 hour 30 minutes")'),
            ("timer for an hour", 'timer(duration="1 hour")'),
        ],
    ),
    "math": (
        'math(question="[question]") compute a math question given as a Python expression.',
        [
            ("what is nine times nine", 'math(question="9*9")'),
            ("square root of sixteen", 'math(question="sqrt(16)")'),
            ("what's twelve and a half percent of four hundred", 'math(question="12.5/100*400")'),
            ("could you work out 365 times 24", 'math(question="365*24")'),
        ],
    ),
    "notes": (
        'notes(action="add|list", note="[note]") add a note or list the notes.',
        [
            ("remind me to call mom", 'notes(action="add", note="call mom")'),
            ("what's on my list", 'notes(action="list")'),
        ],
    ),
    "openai": (
        'openai(prompt="[prompt]") ask a general-purpose AI.',
        [
            ("would you mind explaining how vaccines work", 'openai(prompt="explain how vaccines work")'),
            ("who wrote hamlet", 'openai(prompt="who wrote hamlet")'),
        ],
    ),
    "other": (
        "other() anything that is not a request to one of the skills above.",
        [("I had a long day", "other()"), ("thank you", "other()"), ("hmm yeah", "other()")],
    ),
}


def write_hand(directory: Path, skill: str) -> Path:
    signature, pairs = HAND[skill]
    body = "".join(f"\n### User: {u}\n### Assistant: {a}\n" for u, a in pairs)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{skill}.txt"
    path.write_text(f"#### Prompt:\n{signature}\n\n#### Prompt Examples:\n{body}")
    return path


def offline_params(seed: int = 0, per_skill: int = 30, **counts: int) -> GenerateParams:
    return GenerateParams(skills=list(HAND), backend="offline", seed=seed, per_skill=per_skill, counts=counts)


def run_offline(tmp_path: Path, skill: str, params: GenerateParams, out: str = "generated"):
    hand = read_example_file(write_hand(tmp_path / "examples", skill))
    pairs, report = generate(hand, params, PROMPTS, tmp_path / "cache")
    path, _ = write_generated(tmp_path / out, hand.skill, pairs, report)
    return hand, read_example_file(path), report  # strict parse of what was written


# ---------------------------------------------------------------- offline backend


@pytest.mark.parametrize("skill", list(HAND))
def test_offline_valid_counted_new_and_deterministic(tmp_path, skill):
    hand, written, report = run_offline(tmp_path, skill, offline_params(other=40))
    want = 40 if skill == "other" else 30
    assert len(written.pairs) == report["written"] == report["requested"] == want
    assert written.skill == hand.skill and written.skill.description == hand.skill.description
    assert all(p.skill == skill for p in written.pairs)
    assert report["source"] == "augmented" and report["invalid"] == {}
    keys = [normalise(p.user) for p in written.pairs]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & {normalise(p.user) for p in hand.pairs}

    run_offline(tmp_path, skill, offline_params(other=40), out="again")
    run_offline(tmp_path, skill, offline_params(seed=1, other=40), out="seed1")
    first = (tmp_path / "generated" / f"{skill}.txt").read_bytes()
    assert (tmp_path / "again" / f"{skill}.txt").read_bytes() == first
    assert (tmp_path / "seed1" / f"{skill}.txt").read_bytes() != first


def test_offline_swaps_replace_value_in_utterance_and_call(tmp_path):
    _, weather, report = run_offline(tmp_path, "weather", offline_params(per_skill=60))
    located = [p for p in weather.pairs if "location" in parse_call(p.answer).kwargs]
    assert report["methods"]["swap"] > 20
    assert len({parse_call(p.answer).kwargs["location"] for p in located}) > 15
    for p in located:
        assert parse_call(p.answer).kwargs["location"].lower() in p.user.lower(), p

    _, timer, _ = run_offline(tmp_path, "timer", offline_params(per_skill=60))
    for p in timer.pairs:
        duration = parse_call(p.answer).kwargs["duration"]
        assert re.fullmatch(r"\d+ (hour|minute|second)s?( \d+ (minute|second)s?)?", duration), p
        assert any(re.search(rf"\b{re.escape(form)}\b", p.user, re.I) for form, _ in duration_forms(duration)), p
    spelled = [p.user for p in timer.pairs]
    assert any(re.search(r"\d", u) for u in spelled) and any(
        re.search(r"\b(five|ten|twenty|thirty)", u) for u in spelled
    )
    wrong_article = r"\ba (?!one\b|uni|use)(?:[aeiou]|hour|8|11\b|18\b)|\ban (?![aeiou]|hour|8|11\b|18\b)"
    assert not [u for u in spelled if re.search(wrong_article, u, re.I)], "a eight minute timer"

    _, maths, _ = run_offline(tmp_path, "math", offline_params(per_skill=60))
    slot = load_values(PROMPTS / "augment.yaml").slots["math.question"]
    assert isinstance(slot, MathSlot)
    for p in maths.pairs:
        assert slot.find(p.user, parse_call(p.answer).kwargs["question"]), p
    assert len({parse_call(p.answer).kwargs["question"] for p in maths.pairs}) > 40


def test_offline_value_not_in_utterance_only_gets_surface_variants(tmp_path):
    _, written, _ = run_offline(tmp_path, "openai", offline_params(per_skill=40))
    vaccines = [p for p in written.pairs if "vaccines" in p.user]
    assert vaccines and all(p.answer == 'openai(prompt="explain how vaccines work")' for p in vaccines)
    for p in written.pairs:  # every other prompt is spoken in the utterance
        assert parse_call(p.answer).kwargs["prompt"].lower().rstrip(".?") in p.user.lower() or p in vaccines


def test_offline_other_mixes_hand_variants_and_grammar(tmp_path):
    _, written, report = run_offline(tmp_path, "other", offline_params(other=120))
    assert {p.answer for p in written.pairs} == {"other()"}
    families = Counter(m.split(":")[1] for m in report["methods"])
    assert {"hand", "noise", "near_miss", "half_sentence", "to_people"} <= set(families)


@pytest.mark.parametrize("path", example_paths(REPO / "examples"), ids=lambda p: p.stem)
def test_offline_on_the_real_example_files(tmp_path, path):
    hand = read_example_file(path)
    params = offline_params(per_skill=60, other=100)
    pairs, report = generate(hand, params, PROMPTS, tmp_path / "cache")
    out, _ = write_generated(tmp_path, hand.skill, pairs, report)
    written = read_example_file(out)
    assert len(written.pairs) == params.count(hand.skill.name) and report["invalid"] == {}
    hand_keys = {normalise(p.user) for p in hand.pairs}
    assert not hand_keys & {normalise(p.user) for p in written.pairs}


def test_values_file_errors_name_the_key(tmp_path):
    data = yaml.safe_load((PROMPTS / "augment.yaml").read_text())
    data["other"]["families"]["noise"].append("{no_such_list} hmm")
    bad = tmp_path / "augment.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"augment.yaml: other.families.noise: .*no_such_list"):
        load_values(bad)
    data = yaml.safe_load((PROMPTS / "augment.yaml").read_text())
    data["slots"]["news.topic"]["classes"]["field"].append(42)
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=r"slots.news.topic.classes.field: expected a non-empty list of strings"):
        load_values(bad)


# ---------------------------------------------------------------- openai backend, against a real local server


@pytest.fixture
def server(monkeypatch):
    with serving(monkeypatch) as srv:
        yield srv


def mixed_notes_calls(body: dict, choice: int) -> list[dict]:
    """Per choice: one valid notes call, one with an action outside the enum, one with an unknown parameter, one
    without an utterance; every third choice has no tool call at all."""
    if choice % 3 == 2:
        return []
    r = body["seed"]
    return [
        {"user_utterance": f"jot down buy {r} apples and {choice} pears", "action": "add", "note": f"buy {r} apples"},
        {"user_utterance": f"delete note {r} {choice}", "action": "delete"},
        {"user_utterance": f"remember {r} {choice}", "action": "add", "priority": "high"},
        {"action": "list"},
    ]


def openai_params(base_url: str | None, per_skill: int = 12, n: int = 3, concurrency: int = 8) -> GenerateParams:
    p = OpenAIParams(base_url, "test-model", n, 2, 0.9, 2, 3, retry_base_delay=0.01, timeout=10.0)
    p.concurrency = concurrency
    return GenerateParams(skills=list(HAND), backend="openai", seed=0, per_skill=per_skill, openai=p)


def notes_hand(tmp_path: Path):
    return read_example_file(write_hand(tmp_path / "examples", "notes"))


def test_openai_candidates_parsed_and_invalid_ones_reported(tmp_path, server, capsys):
    server.completion = lambda body: completion(body, mixed_notes_calls)
    pairs, report = generate(notes_hand(tmp_path), openai_params(server.base_url), PROMPTS, tmp_path / "cache")
    assert len(server.requests) == report["requests"] == report["api_calls"] == 2  # ceil(12 / (3 * 2))
    body = server.requests[0]["body"]
    assert server.requests[0]["path"] == "/v1/chat/completions" and server.requests[0]["auth"] == f"Bearer {KEY}"
    assert body["n"] == 3 and body["temperature"] == 0.9 and body["model"] == "test-model"
    tool = body["tools"][0]["function"]
    assert tool["name"] == "notes" and tool["parameters"]["properties"]["action"]["enum"] == ["add", "list"]
    assert (
        "remind me to call mom" in body["messages"][1]["content"]
        or "what's on my list" in body["messages"][1]["content"]
    )
    # per request: choices 0 and 1 give 4 tool calls each, choice 2 none
    assert report["received"] == 2 * (4 + 4 + 1)
    assert report["invalid"] == {"invalid_value": 4, "unknown_parameter": 4, "missing_utterance": 4, "no_tool_call": 2}
    assert report["valid"] == len(pairs) == 4 and report["source"] == "generated"
    assert pairs[0].answer == 'notes(action="add", note="buy 0 apples")'  # request 0 (seed 0), choice 0
    assert report["base_url"] == server.base_url and report["base_url_from"] == "generate.openai.base_url"
    assert report["failed_attempts"] == {} and report["concurrency"] == 8
    assert report["shortfall"] == 8 and report["warnings"] == [
        "generate@notes: wrote 4 of 12 requested pairs (shortfall 8): too few distinct valid candidates (see invalid "
        "and duplicates in the report); add hand examples or values"
    ]
    assert f"WARNING: {report['warnings'][0]}" in capsys.readouterr().err
    out, _ = write_generated(tmp_path / "generated", notes_hand(tmp_path).skill, pairs, report)
    assert [p.user for p in read_example_file(out).pairs] == [p.user for p in pairs]


def test_openai_rerun_is_served_from_the_cache(tmp_path, server, monkeypatch):
    hand, params = notes_hand(tmp_path), openai_params(server.base_url)
    first, report = generate(hand, params, PROMPTS, tmp_path / "cache")
    assert len(server.requests) == 2 and len(list((tmp_path / "cache").glob("*.json"))) == 2
    monkeypatch.delenv("OPENAI_API_KEY")  # a fully cached rerun needs no key
    second, again = generate(hand, params, PROMPTS, tmp_path / "cache")
    assert len(server.requests) == 2 and again["api_calls"] == 0 and again["cached_responses"] == 2
    assert second == first
    params.openai.temperature = 0.5  # another request: another cache entry
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    generate(hand, params, PROMPTS, tmp_path / "cache")
    assert len(server.requests) == 4


def test_openai_responses_survive_a_failure_midway(tmp_path, server):
    hand, params = notes_hand(tmp_path), openai_params(server.base_url, per_skill=30, concurrency=1)  # 5 requests
    server.faults = [None] * 3 + [401]  # the fourth request is refused
    with pytest.raises(GenerateError, match="refused the credentials"):
        generate(hand, params, PROMPTS, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3
    generate(hand, params, PROMPTS, tmp_path / "cache")
    assert len(server.requests) == 4 + 2  # only the two missing responses are asked for
    assert Counter(r["body"]["seed"] for r in server.requests[4:]) == {3: 1, 4: 1}


def test_openai_invalid_cache_entry_is_asked_again_with_a_warning(tmp_path, server, capsys):
    """An older version cached 200-with-error bodies; such an entry must neither count as a response nor stay."""
    hand, params = notes_hand(tmp_path), openai_params(server.base_url, per_skill=6)  # 1 request
    generate(hand, params, PROMPTS, tmp_path / "cache")
    (entry,) = (tmp_path / "cache").glob("*.json")
    request = json.loads(entry.read_text())["request"]
    entry.write_text(json.dumps({"request": request, "response": {"error": {"message": "overloaded"}}}))
    pairs, report = generate(hand, params, PROMPTS, tmp_path / "cache")
    assert len(server.requests) == 2 and report["invalid_cache_entries"] == 1 and len(pairs) == 6
    assert report["warnings"][0].startswith(f"{entry}: not a valid cached completion (an error object")
    assert "asking the endpoint again" in capsys.readouterr().err
    assert json.loads(entry.read_text())["response"]["choices"]


def test_openai_base_url_precedence(tmp_path, server, monkeypatch):
    """generate.openai.base_url when set, else OPENAI_BASE_URL, else the SDK's default."""
    with serving(monkeypatch) as other:  # the same key; OPENAI_BASE_URL deleted again
        hand = notes_hand(tmp_path)
        monkeypatch.setenv("OPENAI_BASE_URL", other.base_url)
        _, report = generate(hand, openai_params(server.base_url, per_skill=6), PROMPTS, tmp_path / "a")
        assert (len(server.requests), len(other.requests)) == (1, 0)
        assert report["base_url_from"] == "generate.openai.base_url"
        _, report = generate(hand, openai_params(None, per_skill=6), PROMPTS, tmp_path / "b")
        assert (len(server.requests), len(other.requests)) == (1, 1)
        assert report["base_url"] == other.base_url and report["base_url_from"] == "OPENAI_BASE_URL"
        # the endpoint is part of the request key: the same request to another endpoint is another cache entry
        generate(hand, openai_params(None, per_skill=6), PROMPTS, tmp_path / "a")
        assert len(other.requests) == 2
    import openai

    monkeypatch.setenv("OPENAI_BASE_URL", " ")  # blank counts as unset
    assert resolve_base_url(None) == (DEFAULT_BASE_URL, "default")
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert resolve_base_url("") == (DEFAULT_BASE_URL, "default")
    assert str(openai.OpenAI(api_key="x").base_url).rstrip("/") == DEFAULT_BASE_URL  # the SDK's own default


def test_openai_concurrency_sends_each_request_once_in_parallel(tmp_path, monkeypatch):
    with serving(monkeypatch, latency_s=1.0) as slow:  # a second per answer: a busy CPU cannot blur the rounds
        hand = notes_hand(tmp_path)
        parallel, _ = generate(hand, openai_params(slow.base_url, per_skill=48, n=1), PROMPTS, tmp_path / "a")
        arrivals = sorted(r["time"] for r in slow.requests)
        assert len(arrivals) == 24 and arrivals[7] - arrivals[0] < 0.8  # the first 8 were in flight together
        assert arrivals[8] - arrivals[0] >= 0.8  # the 9th waited for a free slot
        assert Counter(r["body"]["seed"] for r in slow.requests) == {seed: 1 for seed in range(24)}
        assert len(list((tmp_path / "a").glob("*.json"))) == 24
        serial, _ = generate(
            hand, openai_params(slow.base_url, per_skill=6, n=1, concurrency=1), PROMPTS, tmp_path / "b"
        )
    assert serial == parallel[:6]  # the order of the pairs follows the requests, not the arrivals


def test_openai_params_out_of_range_are_named(tmp_path, server):
    params = openai_params(server.base_url, concurrency=0)
    params.openai.timeout = 0
    with pytest.raises(GenerateError, match=r"generate.openai: concurrency must be >= 1, got 0; timeout must be > 0"):
        generate(notes_hand(tmp_path), params, PROMPTS, tmp_path / "cache")
    assert server.requests == []


NOTES = parse_signature('notes(action="add|list", note="[note]") add or list notes.')
MARKERS = ["\n### User: ", "\n### Assistant: other()", "\u2028", "\r", "\x85", "\t", '"), other("', "\\", "  "]
values = st.lists(st.one_of(st.text(max_size=10), st.sampled_from(MARKERS)), max_size=5).map("".join)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.tuples(values, values), min_size=1, max_size=4))
def test_generated_values_round_trip_or_are_rejected_with_a_reason(items):
    response = completion(
        {"seed": 0, "n": 1, "model": "m", "tools": [tool_schema(NOTES)]},
        lambda body, i: [{"user_utterance": user, "action": "add", "note": note} for user, note in items],
    )
    got = candidates(check_completion(response), NOTES)
    assert len(got) == len(items)
    for (user, note), candidate in zip(items, got, strict=True):
        if not user.strip():
            assert isinstance(candidate, Rejected) and candidate.reason == "missing_utterance"
        elif bad_character(user) or bad_character(note):
            assert isinstance(candidate, Rejected) and candidate.reason == UNREPRESENTABLE
        else:
            assert candidate == Pair(
                " ".join(user.split()), str(validate(f"notes(action='add', note={note!r})", {"notes": NOTES})), "notes"
            )
    kept = [c for c in got if isinstance(c, Pair)]
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = write_generated(tmp, NOTES, kept, {})
        assert [(p.user, p.answer) for p in read_example_file(path).pairs] == [(p.user, p.answer) for p in kept]


def test_stage_cli_openai_writes_no_key_anywhere(tmp_path, server):
    work = tmp_path / "work"
    write_hand(work / "examples", "notes")
    params = openai_params(server.base_url)
    params = {"generate": {**vars(params), "openai": vars(params.openai)}}
    params["collect"] = {"seed": 0, "val_fraction": 0.0, "test_fraction": 0.0}  # every hand example in train
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [
        sys.executable,
        "-m",
        "stages.generate",
        "notes",
        "examples/notes.txt",
        "data/generated",
        str(PROMPTS),
        "data/cache/openai",
    ]
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((work / "data/generated/notes.report.json").read_text())
    assert report["written"] == 12 and report["source"] == "generated" and report["warnings"] == []
    assert KEY not in proc.stdout + proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 5
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path


def test_stage_cli_offline_with_repo_params(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"]["per_skill"] = 25  # the default is 0 (hand examples alone)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({k: params[k] for k in ("generate", "collect")}))
    write_hand(tmp_path / "examples", "weather")
    args = [sys.executable, "-m", "stages.generate", "weather", "examples/weather.txt", "out", str(PROMPTS), "cache"]
    proc = subprocess.run(
        args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert len(read_example_file(tmp_path / "out" / "weather.txt").pairs) == params["generate"]["per_skill"]
    assert not (tmp_path / "cache").exists()
    bad = subprocess.run(
        [*args[:3], "timer", *args[4:]],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "weather.txt:2: expected the signature of 'timer'" in bad.stderr


def test_stopping_dvc_repro_stops_the_generate_stage(tmp_path, monkeypatch):
    """dvc does not pass SIGTERM on to a stage; the stage asks Linux for a signal when its parent exits."""
    import psutil
    from dvc_repo import copy_repo, env

    with serving(monkeypatch, hang_s=60) as stuck:
        stuck.faults = ["hang"] * 4
        repo = copy_repo(tmp_path / "repo")
        params = yaml.safe_load((repo / "params.yaml").read_text())
        params["generate"] |= {"backend": "openai", "per_skill": 20}  # the default 0 would ask for nothing
        params["generate"]["openai"] |= {"base_url": stuck.base_url, "timeout": 120.0, "concurrency": 1}
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        with open(tmp_path / "dvc.log", "w") as log:
            dvc = subprocess.Popen(
                [sys.executable, "-m", "dvc", "repro", "generate@notes"],
                cwd=repo,
                env=env(repo),
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 90
        while not stuck.requests:
            assert dvc.poll() is None and time.monotonic() < deadline, (tmp_path / "dvc.log").read_text()
            time.sleep(0.05)
        (stage,) = [p for p in psutil.Process(dvc.pid).children(recursive=True) if "stages.generate" in p.cmdline()]
        dvc.terminate()
        dvc.wait(timeout=10)
        _, alive = psutil.wait_procs([stage], timeout=5)
        assert not alive, "the generate stage outlived dvc"
    assert "stopped by SIGTERM" in (tmp_path / "dvc.log").read_text()
