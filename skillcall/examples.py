"""Read and write the otto-compatible example-file format, with ``file:line`` errors.

    #### Prompt:
    weather(location="[location]") ask for the weather at a location.

    #### Prompt Examples:

    ### User: How hot is it in Lisbon
    ### Assistant: weather(location="Lisbon")

    #### Examples:

    User: do I need an umbrella today          <- otto's variant without ###, also accepted
    Assistant: weather()

Strict by default: any malformed line raises :class:`ExampleError` naming ``file:line``, and so does a byte that
is not UTF-8 or an utterance holding a control character. ``lenient=True`` skips such lines instead and lists each
one in ``ExampleFile.warnings``. Lines end at ``\n``, ``\r\n`` or ``\r`` only (never at U+2028 and the like), and
the writer refuses what would not read back as the same pairs.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from skillcall.calls import UNREPRESENTABLE, CallError, bad_character, validate
from skillcall.skills import SignatureError, Skill, Skills, parse_signature

HEADERS = {"#### Prompt:": "prompt", "#### Prompt Examples:": "prompt_examples", "#### Examples:": "examples"}
_USER = re.compile(r"^(?:###\s*)?User:\s?(.*)$")
_ASSISTANT = re.compile(r"^(?:###\s*)?Assistant:\s?(.*)$")


class ExampleError(ValueError):
    """``examples/weather.txt:12: <what is wrong and what was expected>``."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where = where


@dataclass(frozen=True)
class Pair:
    user: str
    answer: str  # canonical call
    skill: str
    file: str = ""  # "examples/weather.txt:12", the line of the User: turn
    origin: str = ""  # generated pairs: the hand example (its ``file``) or template they were made from


@dataclass
class ExampleFile:
    path: str
    skill: Skill
    prompt_examples: list[Pair] = field(default_factory=list)
    examples: list[Pair] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def pairs(self) -> list[Pair]:
        return self.prompt_examples + self.examples


def read_text(path: str | Path) -> str:
    """The file's text; a byte that is not UTF-8 is an :class:`ExampleError` at its line. A leading BOM is dropped."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ExampleError(
            f"{path}:{line}",
            f"byte 0x{data[e.start]:02x} at column {column} is not UTF-8 ({e.reason}); save the file as UTF-8",
        ) from None
    return text


def _lines(text: str) -> list[str]:
    """Lines as an editor numbers them: split at ``\n``/``\r\n``/``\r`` only, unlike ``str.splitlines``."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def make_pair(user: str, answer: str, skills: Skills, where: str) -> Pair:
    """Validate ``answer`` against ``skills`` and return a canonical :class:`Pair`."""
    if not user.strip():
        raise ExampleError(where, "empty user utterance")
    if problem := bad_character(user):
        raise ExampleError(where, f"the user utterance holds a {problem}; an utterance is plain text on one line")
    try:
        call = validate(answer, skills)
    except CallError as e:
        raise ExampleError(where, f"invalid answer ({e.reason}): {e}") from None
    return Pair(user.strip(), str(call), call.name, where)


def _read_signature(lines: list[str], path: str) -> tuple[Skill, int]:
    """Find ``#### Prompt:`` and the signature + description after it. Returns (skill, index after it)."""
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if line.strip() != "#### Prompt:":
            raise ExampleError(f"{path}:{i + 1}", f"expected '#### Prompt:' as the first header, got {line.strip()!r}")
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j == len(lines) or lines[j].startswith("#"):
            raise ExampleError(f"{path}:{j + 1}", "expected a signature line after '#### Prompt:'")
        try:
            skill = parse_signature(lines[j], f"{path}:{j + 1}")
        except SignatureError as e:
            raise ExampleError(f"{path}:{j + 1}", str(e)) from None
        k = j + 1
        description = [skill.description] if skill.description else []
        while k < len(lines) and not lines[k].startswith("#"):
            if lines[k].strip():
                description.append(lines[k].strip())
            k += 1
        return Skill(skill.name, skill.params, " ".join(description), skill.source), k
    raise ExampleError(f"{path}:1", "empty file: expected '#### Prompt:' and a signature line")


def read_skill(path: str | Path) -> Skill:
    """Only the skill spec of an example file."""
    return _read_signature(_lines(read_text(path)), str(path))[0]


def parse_example_text(text: str, path: str, skills: Skills | None = None, lenient: bool = False) -> ExampleFile:
    """Parse one file's text. Answers are validated against ``skills`` (default: this file's skill only)."""
    lines = _lines(text)
    skill, start = _read_signature(lines, path)
    skills = dict(skills or {})
    skills.setdefault(skill.name, skill)
    parsed = ExampleFile(path, skill)
    section: list[Pair] | None = None
    pending: tuple[str, str] | None = None  # (user text, where) waiting for its Assistant: line

    def problem(where: str, message: str) -> None:
        if not lenient:
            raise ExampleError(where, message)
        parsed.warnings.append(f"{where}: skipped: {message}")

    for i in range(start, len(lines)):
        line, where = lines[i].strip(), f"{path}:{i + 1}"
        if not line:
            continue
        if line.startswith("####"):
            if pending:
                problem(pending[1], "'User:' line without a following 'Assistant:' line")
                pending = None
            name = HEADERS.get(line)
            if name is None or name == "prompt":
                problem(
                    where, f"unknown or repeated header {line!r}; expected '#### Prompt Examples:' or '#### Examples:'"
                )
                section = None
                continue
            section = parsed.prompt_examples if name == "prompt_examples" else parsed.examples
            continue
        user, assistant = _USER.match(line), _ASSISTANT.match(line)
        if section is None:
            problem(where, "pair outside a '#### Prompt Examples:' or '#### Examples:' section")
        elif user:
            if pending:
                problem(pending[1], "'User:' line without a following 'Assistant:' line")
            pending = (user.group(1), where)
        elif assistant:
            if not pending:
                problem(where, "'Assistant:' line without a preceding 'User:' line")
                continue
            try:
                section.append(make_pair(pending[0], assistant.group(1), skills, pending[1]))
            except ExampleError as e:
                problem(e.where, str(e).split(": ", 1)[1])
            pending = None
        else:
            problem(where, f"expected '### User: ...' or '### Assistant: ...', got {line!r}")
    if pending:
        problem(pending[1], "'User:' line without a following 'Assistant:' line")
    return parsed


def read_example_file(path: str | Path, skills: Skills | None = None, lenient: bool = False) -> ExampleFile:
    return parse_example_text(read_text(path), str(path), skills, lenient)


def example_paths(directory: str | Path) -> list[Path]:
    """The skill files of a directory: ``*.txt`` except the rejection list."""
    return sorted(p for p in Path(directory).glob("*.txt") if p.name != "rejected.txt")


def load_skills(directory: str | Path) -> Skills:
    """Every skill spec in ``directory``; a skill defined twice is an error."""
    skills: Skills = {}
    for path in example_paths(directory):
        skill = read_skill(path)
        if skill.name in skills:
            raise ExampleError(skill.source, f"skill {skill.name!r} is already defined at {skills[skill.name].source}")
        skills[skill.name] = skill
    return skills


def read_examples_dir(directory: str | Path, lenient: bool = False) -> tuple[Skills, list[ExampleFile]]:
    skills = load_skills(directory)
    return skills, [read_example_file(p, skills, lenient) for p in example_paths(directory)]


def format_example_file(skill: Skill, prompt_examples: list[Pair], examples: list[Pair]) -> str:
    """The inverse of :func:`parse_example_text`."""

    def block(pairs: list[Pair]) -> str:
        return "".join(f"\n### User: {p.user}\n### Assistant: {p.answer}\n" for p in pairs)

    head = f"#### Prompt:\n{skill.signature} {skill.description}".rstrip()
    return f"{head}\n\n#### Prompt Examples:\n{block(prompt_examples)}\n#### Examples:\n{block(examples)}"


def pair_problem(pair: Pair, skills: Skills) -> tuple[str, str] | None:
    """``(reason, message)`` when the example format cannot hold ``pair`` so that it reads back the same, else None.

    Reasons: ``missing_utterance``, ``unrepresentable`` (a control character, line break or lone surrogate),
    ``not_canonical`` (an utterance with surrounding spaces, an answer not in canonical form) or the answer's
    :class:`CallError` reason.

    >>> from skillcall.skills import parse_signature
    >>> pair_problem(Pair("hi\\n### User: x", "other()", "other"), {"other": parse_signature("other()")})[0]
    'unrepresentable'
    """
    if not pair.user.strip():
        return "missing_utterance", "empty user utterance"
    if problem := bad_character(pair.user):
        return UNREPRESENTABLE, f"the user utterance {pair.user!r} holds a {problem}"
    if pair.user != pair.user.strip():
        return "not_canonical", f"the user utterance {pair.user!r} has surrounding white space"
    try:
        answer = str(validate(pair.answer, skills))
    except CallError as e:
        return e.reason, f"the answer {pair.answer!r} is invalid: {e}"
    if answer != pair.answer:
        return "not_canonical", f"the answer {pair.answer!r} is not canonical ({answer!r})"
    return None


def write_example_file(
    path: str | Path, skill: Skill, prompt_examples: list[Pair], examples: list[Pair], skills: Skills | None = None
) -> None:
    """Write atomically what :func:`parse_example_text` reads back as the same pairs, or raise :class:`ExampleError`
    naming the first pair it cannot hold (see :func:`pair_problem`). Answers are checked against ``skills``
    (default: ``skill`` only)."""
    skills = dict(skills or {skill.name: skill})
    skills.setdefault(skill.name, skill)
    for i, pair in enumerate(prompt_examples + examples):
        if problem := pair_problem(pair, skills):
            raise ExampleError(f"{path}", f"cannot write pair {i + 1} ({problem[0]}): {problem[1]}")
    text = format_example_file(skill, prompt_examples, examples)
    again = parse_example_text(text, str(path), skills)
    if [(p.user, p.answer) for p in again.pairs] != [(p.user, p.answer) for p in prompt_examples + examples]:
        raise ExampleError(f"{path}", "the pairs would not read back as written; nothing was written")
    write_text_atomic(path, text)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename: never a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_pairs_file(path: str | Path, skills: Skills, lenient: bool = False) -> tuple[list[Pair], list[str]]:
    """Pairs from a JSON array or JSONL file with keys ``user``/``answer`` or ``input``/``output`` (otto's formats).

    Returns (pairs, warnings); strict mode raises on the first bad record, lenient mode skips and reports it.
    """
    text = read_text(path)
    if text.lstrip().startswith("["):
        try:
            records = [(f"{path}:record {i + 1}", r) for i, r in enumerate(json.loads(text))]
        except json.JSONDecodeError as e:
            raise ExampleError(f"{path}:{e.lineno}", f"invalid JSON: {e.msg}") from None
    else:
        records = []
        for i, line in enumerate(_lines(text)):
            if line.strip():
                try:
                    records.append((f"{path}:{i + 1}", json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ExampleError(f"{path}:{i + 1}", f"invalid JSON line: {e.msg}") from None
    pairs, warnings = [], []
    for where, record in records:
        try:
            if not isinstance(record, dict):
                raise ExampleError(where, "expected an object with 'user'/'answer' or 'input'/'output'")
            user, answer = record.get("user", record.get("input")), record.get("answer", record.get("output"))
            if not isinstance(user, str) or not isinstance(answer, str):
                raise ExampleError(where, "expected string keys 'user' and 'answer' (or 'input' and 'output')")
            pairs.append(make_pair(user, answer, skills, where))
        except ExampleError as e:
            if not lenient:
                raise
            warnings.append(f"{e}: skipped")
    return pairs, warnings
