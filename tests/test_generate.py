"""The generate stage: offline augmentation, the openai backend against a real local HTTP server, the stage CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from skillcall.augment import MathSlot, duration_forms, load_values
from skillcall.calls import parse_call
from skillcall.dataset import normalise
from skillcall.examples import example_paths, read_example_file
from skillcall.generate import GenerateError, GenerateParams, OpenAIParams, generate, write_generated

REPO = Path(__file__).resolve().parents[1]
PROMPTS = REPO / "prompts"
KEY = "sk-test-6f1d0c9e-never-write-me"

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


class FakeOpenAI(ThreadingHTTPServer):
    """POST /v1/chat/completions. ``statuses``: HTTP errors to answer first; then OpenAI-shaped tool calls:
    per choice one valid notes call, one with an action outside the enum, one with an unknown parameter, one
    without an utterance; every third choice has no tool call at all."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def completion(self, body: dict) -> dict:
        r, choices = len(self.requests), []
        for i in range(body["n"]):
            calls = [
                {
                    "user_utterance": f"jot down buy {r} apples and {i} pears",
                    "action": "add",
                    "note": f"buy {r} apples and {i} pears",
                },
                {"user_utterance": f"delete note {r} {i}", "action": "delete"},
                {"user_utterance": f"remember {r} {i}", "action": "add", "priority": "high"},
                {"action": "list"},
            ]
            tool_calls = [
                {
                    "id": f"call_{r}_{i}_{j}",
                    "type": "function",
                    "function": {"name": "notes", "arguments": json.dumps(c)},
                }
                for j, c in enumerate(calls)
            ]
            message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
            if i % 3 == 2:
                message = {"role": "assistant", "content": "Sure! Here are some examples: ..."}
            choices.append({"index": i, "finish_reason": "tool_calls", "message": message, "logprobs": None})
        usage = {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
        return {
            "id": f"chatcmpl-{r}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": choices,
            "usage": usage,
        }


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.server.statuses:
            status, payload = self.server.statuses.pop(0), {"error": {"message": "nope", "type": "error", "code": None}}
        else:
            status, payload = 200, self.server.completion(body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    srv = FakeOpenAI()
    yield srv
    srv.shutdown()
    srv.server_close()


def openai_params(base_url: str, per_skill: int = 12, n: int = 3) -> GenerateParams:
    p = OpenAIParams(base_url, "test-model", n, 2, 0.9, 2, max_retries=3, retry_base_delay=0.01, timeout=10.0)
    return GenerateParams(skills=list(HAND), backend="openai", seed=0, per_skill=per_skill, openai=p)


def notes_hand(tmp_path: Path):
    return read_example_file(write_hand(tmp_path / "examples", "notes"))


def test_openai_candidates_parsed_and_invalid_ones_reported(tmp_path, server):
    pairs, report = generate(notes_hand(tmp_path), openai_params(server.base_url), PROMPTS, tmp_path / "cache")
    assert len(server.requests) == report["requests"] == 2  # ceil(12 / (3 candidates * 2 examples))
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
    assert pairs[0].answer == 'notes(action="add", note="buy 1 apples and 0 pears")'  # request 1, choice 0
    out, _ = write_generated(tmp_path / "generated", notes_hand(tmp_path).skill, pairs, report)
    assert [p.user for p in read_example_file(out).pairs] == [p.user for p in pairs]


def test_openai_retries_429_and_5xx(tmp_path, server):
    server.statuses = [429, 503]
    pairs, report = generate(notes_hand(tmp_path), openai_params(server.base_url, per_skill=6), PROMPTS, tmp_path / "c")
    assert len(server.requests) == report["api_calls"] == 3 and len(pairs) == 2


def test_openai_gives_up_after_max_retries(tmp_path, server):
    server.statuses = [500] * 10
    with pytest.raises(GenerateError, match="HTTP 500 .* after 3 retries"):
        generate(notes_hand(tmp_path), openai_params(server.base_url, per_skill=6), PROMPTS, tmp_path / "cache")
    assert len(server.requests) == 4


@pytest.mark.parametrize("status", [401, 403])
def test_openai_bad_credentials_fail_fast(tmp_path, server, status):
    server.statuses = [status] * 5
    with pytest.raises(GenerateError, match=f"HTTP {status} .*check OPENAI_API_KEY and generate.openai.base_url"):
        generate(notes_hand(tmp_path), openai_params(server.base_url), PROMPTS, tmp_path / "cache")
    assert len(server.requests) == 1


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
    hand, params = notes_hand(tmp_path), openai_params(server.base_url, per_skill=30)  # 5 requests
    original = server.completion

    def fail_third(body):
        if len(server.requests) == 3:
            server.statuses.append(401)  # the next request is refused
        return original(body)

    server.completion = fail_third
    with pytest.raises(GenerateError):
        generate(hand, params, PROMPTS, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3
    server.completion = original
    generate(hand, params, PROMPTS, tmp_path / "cache")
    assert len(server.requests) == 4 + 2  # only the two missing responses are asked for


def test_stage_cli_openai_writes_no_key_anywhere(tmp_path, server):
    work = tmp_path / "work"
    write_hand(work / "examples", "notes")
    params = {"generate": {**{k: v for k, v in vars(openai_params(server.base_url)).items() if k != "openai"}}}
    params["generate"]["openai"] = vars(openai_params(server.base_url).openai)
    params["collect"] = {"seed": 0, "val_fraction": 0.0, "test_fraction": 0.0}
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
    assert report["written"] == 4 and report["source"] == "generated"
    assert KEY not in proc.stdout + proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 5
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path

    server.statuses = [401]
    (work / "data/cache").rename(work / "old_cache")
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "check OPENAI_API_KEY" in proc.stderr and KEY not in proc.stderr


def test_stage_cli_offline_with_repo_params(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
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
