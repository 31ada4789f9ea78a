"""Generate more examples for one skill: ``offline`` (seeded augmentation, :mod:`skillcall.augment`) or ``openai``
(any OpenAI-compatible chat-completions endpoint). Either way every pair is validated against the skill's signature
and none repeats (normalised) a hand example or another output.

openai backend: the skill is one tool, built from its signature (closed value sets become ``enum``, every
parameter an optional string) plus a required ``user_utterance`` string, so each tool call is one example:

    >>> from skillcall.skills import parse_signature
    >>> tool = tool_schema(parse_signature('notes(action="add|list", note="[note]") add or list notes.'))
    >>> tool["function"]["parameters"]["properties"]["action"]
    {'type': 'string', 'enum': ['add', 'list']}
    >>> tool["function"]["parameters"]["required"]
    ['user_utterance']

Each response is cached on disk under ``<cache_dir>/<sha256 of the request>.json`` (the request holds no key),
written atomically as soon as it arrives, so a rerun with the same params makes no API call and a crash loses
nothing that was paid for.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from skillcall.augment import VALUES_FILE, NewPairs, augment, load_values
from skillcall.calls import Call, CallError, validate
from skillcall.dataset import origins_path, write_jsonl
from skillcall.examples import ExampleFile, Pair, write_example_file
from skillcall.skills import Skill

SYSTEM_PROMPT = "generate_system.txt"  # in the prompts directory
USER_PROMPT = "generate_user.txt"
BACKENDS = {"offline": "augmented", "openai": "generated"}  # backend -> the rows' ``source`` in the dataset
RETRY_STATUS = (408, 409, 429)  # and every 5xx


@dataclass
class OpenAIParams:
    base_url: str
    model: str
    n: int
    examples_per_candidate: int
    temperature: float
    shown_examples: int
    max_retries: int
    retry_base_delay: float
    timeout: float


@dataclass
class GenerateParams:
    skills: list[str]
    backend: str
    seed: int
    per_skill: int
    counts: dict[str, int] = field(default_factory=dict)
    openai: OpenAIParams | None = None

    def count(self, skill: str) -> int:
        return self.counts.get(skill, self.per_skill)


class GenerateError(RuntimeError):
    """Generation cannot go on (bad credentials, endpoint down after retries, bad prompt file)."""


class Rejected(ValueError):
    """A candidate that is not a valid example; ``reason`` goes into the report."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def generate(
    hand: ExampleFile, params: GenerateParams, prompts_dir: str | Path, cache_dir: str | Path
) -> tuple[list[Pair], dict]:
    """New pairs for ``hand.skill`` and the report (counts requested / received / valid / invalid with reasons /
    duplicates of hand examples / written, and ``source``)."""
    if params.backend not in BACKENDS:
        raise GenerateError(f"generate.backend must be one of {', '.join(BACKENDS)}, got {params.backend!r}")
    count = params.count(hand.skill.name)
    if params.backend == "offline":
        pairs, counts = augment(hand, count, params.seed, load_values(Path(prompts_dir) / VALUES_FILE))
    else:
        if params.openai is None:
            raise GenerateError("generate.backend is openai but params.yaml has no generate.openai section")
        pairs, counts = generate_openai(hand, count, params, Path(prompts_dir), Path(cache_dir))
    report = {"skill": hand.skill.name, "backend": params.backend, "source": BACKENDS[params.backend]}
    report |= {"seed": params.seed, "requested": count, **counts, "written": len(pairs)}
    report["shortfall"] = max(0, count - len(pairs))
    if report["shortfall"]:
        print(
            f"WARNING generate@{hand.skill.name}: wrote {len(pairs)} of {count} requested pairs (shortfall "
            f"{report['shortfall']}): too few distinct candidates; add hand examples or values",
            file=sys.stderr,
        )
    return pairs, report


def write_generated(out_dir: str | Path, skill: Skill, pairs: list[Pair], report: dict) -> tuple[Path, Path]:
    """``<out_dir>/<skill>.txt`` (example-file format, pairs under ``#### Examples:``), ``<skill>.report.json``
    and ``<skill>.origins.jsonl`` (``{"user", "origin"}`` per pair, in order: what each pair was made from)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    examples, report_path = out / f"{skill.name}.txt", out / f"{skill.name}.report.json"
    write_example_file(examples, skill, [], pairs)
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_jsonl(origins_path(examples), [{"user": p.user, "origin": p.origin} for p in pairs])
    return examples, report_path


# ---------------------------------------------------------------- openai backend


def tool_schema(skill: Skill) -> dict:
    """The skill as a function tool whose every call is one example (see the module docstring)."""
    props: dict[str, dict] = {
        "user_utterance": {"type": "string", "description": "what the user says, as a speech recognizer writes it"}
    }
    for p in skill.params:
        props[p.name] = (
            {"type": "string", "enum": list(p.choices)}
            if p.choices
            else {"type": "string", "description": f"{p.placeholder}; leave out when the user does not give it"}
        )
    parameters = {"type": "object", "properties": props, "required": ["user_utterance"], "additionalProperties": False}
    return {
        "type": "function",
        "function": {
            "name": skill.name,
            "description": f"{skill.signature} {skill.description}".strip(),
            "parameters": parameters,
        },
    }


def _fill(path: Path, fields: dict[str, str]) -> str:
    try:
        return path.read_text(encoding="utf-8").format(**fields)
    except KeyError as e:
        raise GenerateError(f"{path}: unknown placeholder {{{e.args[0]}}}; known: {', '.join(fields)}") from None


def build_requests(hand: ExampleFile, count: int, params: GenerateParams, prompts_dir: Path) -> list[dict]:
    """``ceil(count / (n * examples_per_candidate))`` requests; each shows a different seeded sample of the hand
    examples and has its own ``seed``, so no two requests are the same."""
    p, skill = params.openai, hand.skill
    assert p is not None
    total = math.ceil(count / (p.n * p.examples_per_candidate))
    requests = []
    for i in range(total):
        rng = random.Random(f"{params.seed}:{skill.name}:{i}")
        shown = rng.sample(hand.pairs, min(p.shown_examples, len(hand.pairs)))
        fields = {
            "name": skill.name,
            "signature": skill.signature,
            "description": skill.description,
            "skills": ", ".join(f"{s}()" for s in params.skills),
            "examples": "\n".join(f"User: {x.user}\nCall: {x.answer}" for x in shown),
            "count": str(p.examples_per_candidate),
        }
        messages = [
            {"role": "system", "content": _fill(prompts_dir / SYSTEM_PROMPT, fields)},
            {"role": "user", "content": _fill(prompts_dir / USER_PROMPT, fields)},
        ]
        requests.append(
            {
                "base_url": p.base_url,
                "model": p.model,
                "messages": messages,
                "tools": [tool_schema(skill)],
                "tool_choice": "required",
                "n": p.n,
                "temperature": p.temperature,
                "seed": params.seed * 100_003 + i,
            }
        )
    return requests


def request_key(request: dict) -> str:
    """sha256 of the canonical JSON of the request (never holds the API key)."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


class Completer:
    """Sends chat-completion requests with retries; the client (and the key) is made at the first real call, so
    a fully cached rerun needs no key."""

    def __init__(self, p: OpenAIParams):
        self.p, self.client, self.calls = p, None, 0

    def _client(self):
        if self.client is None:
            import openai  # here, not at the top: importing it costs ~0.6 s that the offline backend does not need

            key = os.environ.get("OPENAI_API_KEY")
            if not key:
                raise GenerateError("OPENAI_API_KEY is not set: export it (any non-empty string for a local server)")
            self.client = openai.OpenAI(api_key=key, base_url=self.p.base_url, max_retries=0, timeout=self.p.timeout)
        return self.client

    def __call__(self, request: dict) -> dict:
        import openai

        client, body = self._client(), {k: v for k, v in request.items() if k != "base_url"}
        for attempt in range(self.p.max_retries + 1):
            self.calls += 1
            try:
                return client.chat.completions.create(**body).model_dump(mode="json")
            except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                raise GenerateError(
                    f"HTTP {e.status_code} from {self.p.base_url}: the endpoint refused the credentials; "
                    "check OPENAI_API_KEY and generate.openai.base_url"
                ) from None
            except (openai.APIConnectionError, openai.APIStatusError) as e:
                status = getattr(e, "status_code", None)
                retryable = status is None or status in RETRY_STATUS or status >= 500
                what = f"HTTP {status}" if status else type(e).__name__
                if not retryable:
                    raise GenerateError(f"{what} from {self.p.base_url}: {_redact(str(e))}") from None
                if attempt == self.p.max_retries:
                    raise GenerateError(f"{what} from {self.p.base_url}, still after {attempt} retries") from None
                time.sleep(self.p.retry_base_delay * 2**attempt)
        raise AssertionError("unreachable")


def _redact(text: str) -> str:
    key = os.environ.get("OPENAI_API_KEY")
    return text.replace(key, "***") if key else text


def cached_completion(request: dict, cache_dir: Path, complete: Completer) -> tuple[dict, bool]:
    """(response, came from the cache). A miss is sent and stored at once."""
    path = cache_dir / f"{request_key(request)}.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))["response"], True
    response = complete(request)
    _write_atomic(path, {"request": request, "response": response})
    return response, False


def pair_from_tool_call(tool_call: dict, skill: Skill) -> Pair:
    """One tool call -> a validated pair, or :class:`Rejected` with the reason (a CallError reason, ``wrong_tool``,
    ``bad_arguments``, ``missing_utterance``)."""
    function = tool_call.get("function") or {}
    if function.get("name") != skill.name:
        raise Rejected("wrong_tool")
    try:
        args = json.loads(function.get("arguments") or "{}")
    except json.JSONDecodeError:
        raise Rejected("bad_arguments") from None
    if not isinstance(args, dict):
        raise Rejected("bad_arguments")
    user = args.pop("user_utterance", None)
    if not isinstance(user, str) or not user.strip():
        raise Rejected("missing_utterance")
    if not all(isinstance(v, str) for v in args.values()):
        raise Rejected("invalid_value")
    try:
        call = validate(Call(skill.name, tuple(args.items())), {skill.name: skill})
    except CallError as e:
        raise Rejected(e.reason) from None
    return Pair(" ".join(user.split()), str(call), skill.name)


def _from_request(pair: Pair, request: dict) -> Pair:
    """Every pair of one request has that request as its origin (it saw several hand examples: train split only)."""
    return replace(pair, origin=f"openai:{request_key(request)[:16]}")


def candidates(response: dict, skill: Skill) -> list[Pair | Rejected]:
    """Every tool call of every choice; a choice without one counts as ``no_tool_call``."""
    out: list[Pair | Rejected] = []
    for choice in response.get("choices") or []:
        tool_calls = (choice.get("message") or {}).get("tool_calls") or []
        if not tool_calls:
            out.append(Rejected("no_tool_call"))
        for tool_call in tool_calls:
            try:
                out.append(pair_from_tool_call(tool_call, skill))
            except Rejected as e:
                out.append(e)
    return out


def generate_openai(
    hand: ExampleFile, count: int, params: GenerateParams, prompts_dir: Path, cache_dir: Path
) -> tuple[list[Pair], dict]:
    """All valid, new pairs the requests return (about ``count``), and the counts for the report."""
    assert params.openai is not None
    skill, complete = hand.skill, Completer(params.openai)
    kept, invalid = NewPairs.against(hand), Counter()
    requests = build_requests(hand, count, params, prompts_dir)
    bar = tqdm(requests, desc=f"generate@{skill.name}", unit="request")
    for request in bar:
        response, cached = cached_completion(request, cache_dir, complete)
        kept.counts["cached_responses" if cached else "api_responses"] += 1
        for candidate in candidates(response, skill):
            kept.counts["received"] += 1
            if isinstance(candidate, Rejected):
                invalid[candidate.reason] += 1
            else:
                kept.offer(_from_request(candidate, request))
        bar.set_postfix(kept=len(kept.pairs), cached=kept.counts["cached_responses"])
    report = {"requests": len(requests), "api_calls": complete.calls}
    report |= {k: kept.counts[k] for k in ("cached_responses", "api_responses")} | kept.report(invalid)
    report |= {"model": params.openai.model, "base_url": params.openai.base_url}
    return kept.pairs, report
