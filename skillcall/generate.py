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

The endpoint is ``generate.openai.base_url`` when set, else ``OPENAI_BASE_URL`` (the openai SDK's variable), else
the SDK's default; up to ``generate.openai.concurrency`` requests are in flight at once. A response that is a valid
chat completion is cached under ``<cache_dir>/<sha256 of the request>.json`` (the request holds no key), written
atomically by the thread that received it, so a rerun with the same params makes no API call and a crash or kill
loses only the requests in flight. Nothing else enters the cache: an error body, truncated JSON or an HTML page is
retried like a 5xx (as are 408/409/429, honouring ``Retry-After``, timeouts and broken connections), and a cache entry
that is not a valid completion is asked again, with a warning. Expected failures are one-paragraph
:class:`GenerateError` messages naming the endpoint, the status and what to do.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import os
import queue
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from skillcall.augment import VALUES_FILE, NewPairs, augment, load_values
from skillcall.calls import UNREPRESENTABLE, Call, CallError, bad_character, validate
from skillcall.dataset import origins_path, write_jsonl
from skillcall.examples import ExampleFile, Pair, pair_problem, read_text, write_example_file, write_text_atomic
from skillcall.skills import Skill

SYSTEM_PROMPT = "generate_system.txt"  # in the prompts directory
USER_PROMPT = "generate_user.txt"
BACKENDS = {"offline": "augmented", "openai": "generated"}  # backend -> the rows' ``source`` in the dataset
RETRY_STATUS = (408, 409, 429)  # and every 5xx
DEFAULT_BASE_URL = "https://api.openai.com/v1"  # the openai SDK's default endpoint
MAX_RETRY_AFTER = 600.0  # seconds: a server asking to wait longer fails the stage (rerun later) instead of sleeping


@dataclass
class OpenAIParams:
    base_url: str | None  # None: OPENAI_BASE_URL, else DEFAULT_BASE_URL (see resolve_base_url)
    model: str
    n: int
    examples_per_candidate: int
    temperature: float
    shown_examples: int
    max_retries: int
    retry_base_delay: float
    timeout: float
    concurrency: int = 8  # requests in flight at once

    def check(self) -> None:
        """Raise :class:`GenerateError` naming every value out of range."""
        low = {"n": 1, "examples_per_candidate": 1, "shown_examples": 1, "max_retries": 0, "concurrency": 1}
        problems = [f"{k} must be >= {v}, got {getattr(self, k)}" for k, v in low.items() if getattr(self, k) < v]
        problems += [f"timeout must be > 0, got {self.timeout}"] if self.timeout <= 0 else []
        problems += [f"retry_base_delay must be >= 0, got {self.retry_base_delay}"] if self.retry_base_delay < 0 else []
        if problems:
            raise GenerateError(f"params.yaml generate.openai: {'; '.join(problems)}")


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


def warn(warnings: list[str], message: str) -> None:
    """Print ``message`` as a prominent ``WARNING:`` line on stderr and keep it for the report's ``warnings``."""
    tqdm.write(f"WARNING: {message}", file=sys.stderr)
    warnings.append(message)


def generate(
    hand: ExampleFile, params: GenerateParams, prompts_dir: str | Path, cache_dir: str | Path
) -> tuple[list[Pair], dict]:
    """New pairs for ``hand.skill`` and the report (counts requested / received / valid / invalid with reasons /
    duplicates of hand examples / written, ``source`` and ``warnings``). A pair the example file cannot hold as it
    is (:func:`skillcall.examples.pair_problem`) is not kept: it is counted under ``invalid`` by reason."""
    if params.backend not in BACKENDS:
        raise GenerateError(f"generate.backend must be one of {', '.join(BACKENDS)}, got {params.backend!r}")
    count, warnings = params.count(hand.skill.name), []
    if params.backend == "offline":
        pairs, counts = augment(hand, count, params.seed, load_values(Path(prompts_dir) / VALUES_FILE))
    else:
        if params.openai is None:
            raise GenerateError("generate.backend is openai but params.yaml has no generate.openai section")
        pairs, counts = generate_openai(hand, count, params, Path(prompts_dir), Path(cache_dir), warnings)
    pairs, unwritable = writable(pairs, hand.skill)
    if unwritable:
        counts["invalid"] = dict(sorted((Counter(counts.get("invalid", {})) + unwritable).items()))
        counts["valid"] = counts.get("valid", 0) - unwritable.total()
    report = {"skill": hand.skill.name, "backend": params.backend, "source": BACKENDS[params.backend]}
    report |= {"seed": params.seed, "requested": count, **counts, "written": len(pairs)}
    report["shortfall"] = max(0, count - len(pairs))
    if report["shortfall"]:
        warn(
            warnings,
            f"generate@{hand.skill.name}: wrote {len(pairs)} of {count} requested pairs (shortfall "
            f"{report['shortfall']}): too few distinct valid candidates (see invalid and duplicates in the report); "
            "add hand examples or values",
        )
    report["warnings"] = [*report.get("warnings", []), *warnings]
    return pairs, report


def writable(pairs: list[Pair], skill: Skill) -> tuple[list[Pair], Counter]:
    """The pairs the example file holds as they are, and the others counted by reason (see ``pair_problem``)."""
    kept, dropped = [], Counter()
    for pair in pairs:
        problem = pair_problem(pair, {skill.name: skill})
        if problem:
            dropped[problem[0]] += 1
        else:
            kept.append(pair)
    return kept, dropped


def write_generated(out_dir: str | Path, skill: Skill, pairs: list[Pair], report: dict) -> tuple[Path, Path]:
    """``<out_dir>/<skill>.txt`` (example-file format, pairs under ``#### Examples:``), ``<skill>.report.json``
    and ``<skill>.origins.jsonl`` (``{"user", "origin"}`` per pair, in order: what each pair was made from). The
    examples file is written atomically and reads back as exactly ``pairs`` (else nothing is written)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    examples, report_path = out / f"{skill.name}.txt", out / f"{skill.name}.report.json"
    write_example_file(examples, skill, [], pairs)
    write_text_atomic(report_path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
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
        return read_text(path).format(**fields)
    except KeyError as e:
        raise GenerateError(f"{path}: unknown placeholder {{{e.args[0]}}}; known: {', '.join(fields)}") from None
    except (IndexError, ValueError) as e:
        raise GenerateError(f"{path}: {e}; write a literal brace as {{{{ or }}}}") from None


def resolve_base_url(configured: str | None) -> tuple[str, str]:
    """(endpoint, where it came from): ``generate.openai.base_url`` when set, else ``OPENAI_BASE_URL``, else the
    openai SDK's default.

    >>> resolve_base_url("http://127.0.0.1:8000/v1/")
    ('http://127.0.0.1:8000/v1', 'generate.openai.base_url')
    """
    if configured and configured.strip():
        return configured.strip().rstrip("/"), "generate.openai.base_url"
    env = os.environ.get("OPENAI_BASE_URL", "").strip()
    if env:
        return env.rstrip("/"), "OPENAI_BASE_URL"
    return DEFAULT_BASE_URL, "default"


def build_requests(hand: ExampleFile, count: int, params: GenerateParams, prompts_dir: Path) -> list[dict]:
    """``ceil(count / (n * examples_per_candidate))`` requests; each shows a different seeded sample of the hand
    examples and has its own ``seed``, so no two requests are the same."""
    p, skill = params.openai, hand.skill
    assert p is not None
    base_url = resolve_base_url(p.base_url)[0]
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
                "base_url": base_url,
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


def _snippet(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters, with the API key's value (if any) masked."""
    key = os.environ.get("OPENAI_API_KEY")
    text = " ".join((text.replace(key, "***") if key else text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _said(error) -> str:
    """What an ``openai.APIStatusError``'s body says: its ``error.message``, else the body's start."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        body = inner.get("message", inner) if isinstance(inner, dict) else inner
    return _snippet(str(body)) if body else "empty body"


class BadCompletion(ValueError):
    """A body that is not a chat completion; ``kind``: ``not_json``, ``error_body`` or ``not_a_completion``."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def check_completion(data: object) -> dict:
    """``data`` if it is a chat completion (an object with choices, each with a message), else :class:`BadCompletion`.

    >>> check_completion({"error": {"message": "model overloaded"}})
    Traceback (most recent call last):
    ...
    skillcall.generate.BadCompletion: an error object instead of a completion: model overloaded
    """
    if not isinstance(data, dict):
        raise BadCompletion("not_a_completion", f"a JSON {type(data).__name__} instead of an object")
    if data.get("error"):
        error = data["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise BadCompletion("error_body", f"an error object instead of a completion: {_snippet(str(message))}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise BadCompletion("not_a_completion", "a JSON object without choices")
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict) or not isinstance(message.get("tool_calls") or [], list):
            raise BadCompletion(
                "not_a_completion", f"a choice that is not a message with a list of tool calls: {choice!r:.80}"
            )
    return data


def parse_completion(body: bytes) -> dict:
    """The chat completion in an HTTP body, else :class:`BadCompletion` quoting the body's start."""
    try:
        data = json.loads(body)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        start = body[:80].decode("utf-8", "replace")
        raise BadCompletion(
            "not_json", f"a body that is not JSON (truncated, or an HTML page?): {_snippet(start)!r}"
        ) from None
    return check_completion(data)


def retry_after(headers) -> float | None:
    """Seconds the server asks to wait (``retry-after-ms``, ``Retry-After`` in seconds or as an HTTP date), or None.

    >>> retry_after({"retry-after": "2"}), retry_after({"retry-after-ms": "1500"}), retry_after({})
    (2.0, 1.5, None)
    """
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                continue
    return None


class _Retry(Exception):
    """One failed attempt worth retrying: ``kind`` (counted in the report), a message, the server's wait if any."""

    def __init__(self, kind: str, message: str, wait: float | None = None):
        super().__init__(message)
        self.kind, self.wait = kind, wait


class Cancelled(Exception):
    """The run is being stopped (an error elsewhere, a signal): a worker drops its request."""


class ResponseCache:
    """``<directory>/<request key>.json`` = ``{"request", "response"}``; only valid completions are stored, and an
    entry that is not one (a cached error from an older version, a hand edit) is a miss with a warning."""

    def __init__(self, directory: Path, warnings: list[str]):
        self.directory, self.warnings, self.invalid = directory, warnings, 0

    def get(self, key: str) -> dict | None:
        path = self.directory / f"{key}.json"
        if not path.exists():
            return None
        try:
            return check_completion(json.loads(path.read_text(encoding="utf-8"))["response"])
        except (ValueError, KeyError, TypeError) as e:
            self.invalid += 1
            warn(
                self.warnings, f"{path}: not a valid cached completion ({_snippet(str(e))}); asking the endpoint again"
            )
            return None

    def put(self, key: str, request: dict, response: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        entry = json.dumps({"request": request, "response": check_completion(response)}, ensure_ascii=False, indent=1)
        write_text_atomic(self.directory / f"{key}.json", entry)


def run_parallel(work: Callable, items: list, workers: int, on_done: Callable, stop: threading.Event) -> None:
    """``on_done(work(item))`` for every item, ``work`` on up to ``workers`` daemon threads (they never delay the
    exit), ``on_done`` here. The first exception (a worker's, or one raised here, e.g. by a signal handler) sets
    ``stop`` and is raised."""
    todo, done = queue.SimpleQueue(), queue.SimpleQueue()
    for item in items:
        todo.put(item)

    def worker() -> None:
        while not stop.is_set():
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put((True, work(item)))
            except BaseException as e:  # handed to the main thread
                done.put((False, e))
                return

    for _ in range(min(workers, len(items))):
        threading.Thread(target=worker, daemon=True).start()
    try:
        for _ in items:
            while True:
                try:
                    ok, value = done.get(timeout=0.2)  # a timeout keeps signals handled promptly
                    break
                except queue.Empty:
                    continue
            if not ok:
                raise value
            on_done(value)
    finally:
        stop.set()


class Completer:
    """Sends chat-completion requests to one endpoint, from several threads, with retries and backoff. A
    ``Retry-After`` pauses every thread. The client (and the key) is made at the first real call, so a fully cached
    rerun needs no key."""

    def __init__(self, p: OpenAIParams, base_url: str, source: str = "generate.openai.base_url"):
        self.p, self.base_url, self.client, self.calls = p, base_url, None, 0
        self.endpoint = f"{base_url}/chat/completions"
        self.where = f"the base URL {base_url} (from {source})"
        self.failures: Counter = Counter()
        self.stop, self.lock, self.not_before = threading.Event(), threading.Lock(), 0.0

    def connect(self):
        """The openai client, made once (it needs the key; :class:`GenerateError` without one)."""
        if self.client is None:
            import openai  # here, not at the top: importing it costs ~0.6 s that the offline backend does not need

            key = os.environ.get("OPENAI_API_KEY")
            if not key:
                raise GenerateError(
                    f"OPENAI_API_KEY is not set: export it to send requests to {self.where} "
                    "(any non-empty string for a local server that needs none)"
                )
            self.client = openai.OpenAI(api_key=key, base_url=self.base_url, max_retries=0, timeout=self.p.timeout)
        return self.client

    def __call__(self, request: dict) -> dict:
        """The valid completion for ``request``, after up to ``max_retries`` retries, or :class:`GenerateError`."""
        body = {k: v for k, v in request.items() if k != "base_url"}
        client = self.connect()
        for attempt in range(self.p.max_retries + 1):
            self._sleep(self.not_before - time.monotonic())
            with self.lock:
                self.calls += 1
            try:
                return self._attempt(client, body)
            except _Retry as e:
                with self.lock:
                    self.failures[e.kind] += 1
                if attempt == self.p.max_retries:
                    raise GenerateError(self._gave_up(attempt + 1, e)) from None
                if e.wait is None:
                    self._sleep(self.p.retry_base_delay * 2**attempt)
                    continue
                if e.wait > MAX_RETRY_AFTER:
                    raise GenerateError(
                        f"{self.endpoint} asks to wait {e.wait:.0f} s before retrying ({e}), more than "
                        f"{MAX_RETRY_AFTER:.0f} s: rerun later. Responses received so far are cached."
                    ) from None
                with self.lock:  # every thread waits: the limit is the endpoint's, not this request's
                    self.not_before = max(self.not_before, time.monotonic() + e.wait)
        raise AssertionError("unreachable")

    def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (if any); :class:`Cancelled` as soon as the run is stopped."""
        if self.stop.wait(seconds) if seconds > 0 else self.stop.is_set():
            raise Cancelled

    def _attempt(self, client, body: dict) -> dict:
        import openai

        try:
            raw = client.chat.completions.with_raw_response.create(**body)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            raise GenerateError(
                f"{self.endpoint} answered HTTP {e.status_code} ({_said(e)}): the endpoint refused the "
                f"credentials. Check OPENAI_API_KEY (read from the environment only) and that {self.where} is the "
                "endpoint the key belongs to; nothing was retried."
            ) from None
        except openai.APIStatusError as e:
            if e.status_code in RETRY_STATUS or e.status_code >= 500:
                wait = retry_after(e.response.headers)
                raise _Retry(f"http_{e.status_code}", f"HTTP {e.status_code} ({_said(e)})", wait) from None
            raise GenerateError(
                f"{self.endpoint} answered HTTP {e.status_code} ({_said(e)}), which retrying cannot fix. "
                f"Check generate.openai.model ({self.p.model!r}) and {self.where}: an OpenAI-compatible base URL "
                "usually ends in /v1."
            ) from None
        except openai.APITimeoutError:
            raise _Retry("timeout", f"no answer within {self.p.timeout} s (generate.openai.timeout)") from None
        except openai.APIConnectionError as e:
            raise _Retry("connection", f"connection failed: {_snippet(str(e.__cause__ or e))}") from None
        try:
            return parse_completion(raw.http_response.content)
        except BadCompletion as e:
            raise _Retry(e.kind, f"HTTP {raw.status_code} with {e}") from None

    def _gave_up(self, attempts: int, last: _Retry) -> str:
        hint = (
            f"Is {self.where} an OpenAI-compatible endpoint (it usually ends in /v1)?"
            if last.kind in ("not_json", "error_body", "not_a_completion")
            else "If the endpoint stays down, check it, or raise generate.openai.max_retries / timeout."
        )
        return (
            f"{self.endpoint} failed {attempts} attempts in a row (retried with backoff); the last: {last}. "
            f"Responses received so far are cached, so a rerun continues where this one stopped. {hint}"
        )


def pair_from_tool_call(tool_call: object, skill: Skill) -> Pair:
    """One tool call -> a validated pair, or :class:`Rejected` with the reason (a CallError reason, ``bad_tool_call``,
    ``wrong_tool``, ``bad_arguments``, ``missing_utterance``, ``unrepresentable``: a line break or control character
    that the example file cannot hold)."""
    function = tool_call.get("function") if isinstance(tool_call, dict) else None
    if not isinstance(function, dict):
        raise Rejected("bad_tool_call")
    if function.get("name") != skill.name:
        raise Rejected("wrong_tool")
    args = function.get("arguments") or "{}"
    try:
        args = json.loads(args) if isinstance(args, str) else args  # some servers send an object
    except json.JSONDecodeError:
        raise Rejected("bad_arguments") from None
    if not isinstance(args, dict):
        raise Rejected("bad_arguments")
    user = args.pop("user_utterance", None)
    if not isinstance(user, str) or not user.strip():
        raise Rejected("missing_utterance")
    if bad_character(user):
        raise Rejected(UNREPRESENTABLE)
    if not all(isinstance(v, str) for v in args.values()):
        raise Rejected("invalid_value")
    try:
        call = validate(Call(skill.name, tuple(args.items())), {skill.name: skill})
    except CallError as e:
        raise Rejected(e.reason) from None
    pair = Pair(" ".join(user.split()), str(call), skill.name)
    if problem := pair_problem(pair, {skill.name: skill}):
        raise Rejected(problem[0])
    return pair


def _from_request(pair: Pair, request: dict) -> Pair:
    """Every pair of one request has that request as its origin (it saw several hand examples: train split only)."""
    return replace(pair, origin=f"openai:{request_key(request)[:16]}")


def candidates(response: dict, skill: Skill) -> list[Pair | Rejected]:
    """Every tool call of every choice; a choice without one counts as ``no_tool_call``."""
    out: list[Pair | Rejected] = []
    for choice in response["choices"]:
        tool_calls = choice["message"].get("tool_calls") or []
        if not tool_calls:
            out.append(Rejected("no_tool_call"))
        for tool_call in tool_calls:
            try:
                out.append(pair_from_tool_call(tool_call, skill))
            except Rejected as e:
                out.append(e)
    return out


def generate_openai(
    hand: ExampleFile,
    count: int,
    params: GenerateParams,
    prompts_dir: Path,
    cache_dir: Path,
    warnings: list[str] | None = None,
) -> tuple[list[Pair], dict]:
    """All valid, new pairs the requests return (about ``count``; in request order, whatever the concurrency), and
    the counts for the report. None at all is a :class:`GenerateError` (fewer than ``count``: see ``generate``)."""
    p, skill = params.openai, hand.skill
    assert p is not None
    p.check()
    warnings = [] if warnings is None else warnings
    base_url, source = resolve_base_url(p.base_url)
    requests = build_requests(hand, count, params, prompts_dir)
    unique = {request_key(r): r for r in requests}
    cache, complete = ResponseCache(cache_dir, warnings), Completer(p, base_url, source)
    responses = {key: cache.get(key) for key in unique}
    todo = [key for key, response in responses.items() if response is None]
    print(
        f"generate@{skill.name}: {len(unique)} requests to {complete.endpoint} (base URL from {source}), "
        f"{len(unique) - len(todo)} cached, {len(todo)} to send, up to {p.concurrency} at a time",
        file=sys.stderr,
    )

    def work(key: str) -> str:
        responses[key] = complete(unique[key])
        cache.put(key, unique[key], responses[key])
        return key

    if todo:
        complete.connect()  # fails here, once, when there is no key
        with tqdm(total=len(todo), desc=f"generate@{skill.name}", unit="request", disable=None) as bar:  # TTY only
            run_parallel(work, todo, p.concurrency, lambda _: bar.update(), complete.stop)

    kept, invalid = NewPairs.against(hand), Counter()
    for request in requests:
        for candidate in candidates(responses[request_key(request)], skill):
            kept.counts["received"] += 1
            if isinstance(candidate, Rejected):
                invalid[candidate.reason] += 1
            else:
                kept.offer(_from_request(candidate, request))
    report = {"requests": len(requests), "cached_responses": len(unique) - len(todo), "api_responses": len(todo)}
    report |= {"api_calls": complete.calls, "failed_attempts": dict(sorted(complete.failures.items()))}
    report |= {"invalid_cache_entries": cache.invalid} | kept.report(invalid)
    report |= {"model": p.model, "base_url": base_url, "base_url_from": source, "concurrency": p.concurrency}
    if count and not kept.pairs:
        raise GenerateError(
            f"generate@{skill.name}: no valid new pair among {report['received']} candidates from {complete.endpoint} "
            f"(invalid: {report['invalid']}, duplicates of hand examples: {report['duplicates_of_hand']}, "
            f"duplicates: {report['duplicates']}). Check the model ({p.model!r}) and prompts/{SYSTEM_PROMPT}, "
            f"{USER_PROMPT}."
        )
    return kept.pairs, report
