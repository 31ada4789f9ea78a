"""Parse, validate, canonicalise and compare skill calls. Uses ``ast``; never evaluates.

>>> from skillcall.skills import parse_signature
>>> skills = {"weather": parse_signature('weather(location="[location]")')}
>>> canonical("weather(location='Berlin')", skills)
'weather(location="Berlin")'
>>> calls_match("weather(location='')", "weather()", skills)
True
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from skillcall.skills import Skills

# Reasons a string is not a valid call; each is distinct so reports can count them.
NOT_A_CALL = "not_a_call"
UNKNOWN_SKILL = "unknown_skill"
UNKNOWN_PARAMETER = "unknown_parameter"
INVALID_VALUE = "invalid_value"
UNREPRESENTABLE = "unrepresentable"  # a control character, line break or lone surrogate: no file line can hold it
_BAD_CATEGORIES = {
    "Cc": "control character",
    "Zl": "line separator",
    "Zp": "paragraph separator",
    "Cs": "lone surrogate",
}


class CallError(ValueError):
    """``reason`` is one of NOT_A_CALL, UNKNOWN_SKILL, UNKNOWN_PARAMETER, INVALID_VALUE, UNREPRESENTABLE."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[tuple[str, str], ...] = ()

    @property
    def kwargs(self) -> dict[str, str]:
        return dict(self.args)

    def __str__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={json.dumps(v, ensure_ascii=False)}' for k, v in self.args)})"


def bad_character(text: str) -> str | None:
    """What makes ``text`` unfit for one line of an example file (a control character, a line or paragraph
    separator, a lone surrogate), or None. Tabs and newlines count: an utterance is one line, and so is a call.

    >>> bad_character("set a timer"), bad_character("a\u2028### User: b")
    (None, 'line separator U+2028 at index 1')
    """
    for i, ch in enumerate(text):
        kind = _BAD_CATEGORIES.get(unicodedata.category(ch))
        if kind:
            return f"{kind} U+{ord(ch):04X} at index {i}"
    return None


def _string_tokens(source: str) -> int:
    """How many string literals ``source`` (one argument value) is made of: 2+ is implicit concatenation."""
    try:
        return sum(t.type == tokenize.STRING for t in tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return 0


def parse_call(text: str) -> Call:
    """``'timer(duration="10 minutes")'`` -> ``Call('timer', (('duration', '10 minutes'),))``.

    Exactly one call of a plain name with keyword arguments whose values are single string literals (no implicit
    concatenation such as ``"5" "minutes"``), each argument given once.
    """
    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise CallError(NOT_A_CALL, f"not a call: {text!r} does not parse") from None
    node = tree.body
    if not isinstance(node, ast.Call):
        raise CallError(NOT_A_CALL, f"not a call: {text!r}")
    if not isinstance(node.func, ast.Name):
        raise CallError(NOT_A_CALL, f"not a call of a plain skill name: {text!r}")
    if node.args:
        raise CallError(NOT_A_CALL, f"positional arguments are not allowed: {text!r}")
    args = []
    for kw in node.keywords:
        if kw.arg is None:
            raise CallError(NOT_A_CALL, f"**kwargs are not allowed: {text!r}")
        if not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str)):
            raise CallError(NOT_A_CALL, f"argument {kw.arg!r} must be a string literal: {text!r}")
        if any(k == kw.arg for k, _ in args):
            raise CallError(NOT_A_CALL, f"argument {kw.arg!r} is given twice: {text!r}")
        if _string_tokens(ast.get_source_segment(source, kw.value) or "") != 1:
            raise CallError(
                NOT_A_CALL, f"argument {kw.arg!r} is several string literals joined implicitly; write one: {text!r}"
            )
        args.append((kw.arg, kw.value.value))
    return Call(node.func.id, tuple(args))


def validate(call: Call | str, skills: Skills) -> Call:
    """Check ``call`` against the signatures; return it canonicalised (signature order, no empty args)."""
    if isinstance(call, str):
        call = parse_call(call)
    skill = skills.get(call.name)
    if skill is None:
        raise CallError(UNKNOWN_SKILL, f"unknown skill {call.name!r} (known: {', '.join(sorted(skills))})")
    given = dict(call.args)
    if len(given) != len(call.args):
        raise CallError(NOT_A_CALL, f"{skill.name}() is given an argument twice: {call}")
    for name, value in given.items():
        param = skill.param(name)
        if param is None:
            raise CallError(
                UNKNOWN_PARAMETER, f"{skill.name}() has no parameter {name!r}; signature: {skill.signature}"
            )
        if problem := bad_character(value):
            raise CallError(UNREPRESENTABLE, f"{skill.name}({name}=...) holds a {problem}: {value!r}")
        if param.choices and value and value not in param.choices:
            raise CallError(
                INVALID_VALUE, f"{skill.name}({name}=...) must be one of {'|'.join(param.choices)}, got {value!r}"
            )
    ordered = tuple((p.name, given[p.name].strip()) for p in skill.params if given.get(p.name, "").strip())
    return Call(call.name, ordered)


def canonical(call: Call | str, skills: Skills) -> str:
    """Double quotes, signature order, empty string == absent."""
    return str(validate(call, skills))


_BFCL_DROP = re.compile(r"[\s,./\-_*^]")


def bfcl_string(value: str) -> str:
    """A string argument as the BFCL AST checker compares it: lower case, no spaces and no ``,./-_*^``.

    >>> bfcl_string("What's the Tallest mountain?")
    "what'sthetallestmountain?"
    """
    return _BFCL_DROP.sub("", value.lower())


def _bfcl(call: Call) -> tuple:
    return call.name, tuple((k, bfcl_string(v)) for k, v in call.args)


def calls_match(pred: Call | str, gold: Call | str, skills: Skills) -> bool:
    """True when both are valid, name the same skill and arguments, and each argument's value is equal the BFCL
    way (:func:`bfcl_string`): argument order, quote style, case, spaces and ``,./-_*^`` do not matter.

    >>> from skillcall.skills import parse_signature
    >>> calls_match('news(topic="Stock-Market")', "news(topic='stock market')", {"news": parse_signature('news(topic="[t]")')})
    True
    """
    try:
        return _bfcl(validate(pred, skills)) == _bfcl(validate(gold, skills))
    except CallError:
        return False


_CALL_START = re.compile(r"\s*`*([A-Za-z_]\w*\s*(\(.*)?)?", re.S)


def could_start_call(line: str) -> bool:
    """False once the first line of a generation can no longer become a call (prose, punctuation).

    >>> could_start_call('weather(location="Os'), could_start_call(" "), could_start_call("Sure, here")
    (True, True, False)
    """
    return _CALL_START.fullmatch(line.split("\n")[0]) is not None


_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)\s*```", re.S)


def extract_call(text: str) -> str:
    """The call-looking part of a model's output: strip code fences, keep the first non-empty line.

    >>> extract_call('```python\\nweather(location="Oslo")\\n```')
    'weather(location="Oslo")'
    >>> extract_call('  timer(duration="5 minutes")\\nSure, anything else?')
    'timer(duration="5 minutes")'
    """
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip().strip("`").strip()
    return ""


WORD = re.compile(r"[\w']+")  # a word: letters, digits and apostrophes ("what's")


def words(text: str) -> list[str]:
    """The words of ``text``, lower case, without punctuation.

    >>> words("What's the weather in Saint-Tropez?")
    ["what's", 'the', 'weather', 'in', 'saint', 'tropez']
    """
    return WORD.findall(text.lower())


HESITATIONS = frozenset("um umm uh uhh er erm hmm ah".split())  # sounds of hesitation: never part of a value
_CORRECTION = re.compile(  # "make that" only after a word that takes back: "how do i make that" asks
    r"\b(?:no wait|wait no|no sorry|i mean|i meant|scratch that|no actually|actually no|or rather|"
    r"(?:actually|no|or|uh|um|er|erm) make that)\b"
)


def correction_end(text: str) -> int:
    """Where the last self-correction in ``text`` (lower case) ends, 0 if it has none: what was said before it was
    taken back (in every train and val example with a spanned value and one of these, the value comes after it).

    >>> correction_end("start konsole no wait yakuake"), correction_end("open the tor browser")
    (21, 0)
    >>> correction_end("time in mumbai no actually delhi"), correction_end("how do i make that sauce thicker")
    (26, 0)
    """
    return max((m.end() for m in _CORRECTION.finditer(text)), default=0)


def said(value: str, utterance: str) -> bool:
    """True when ``value``'s words occur one after another in ``utterance`` (case and punctuation aside).

    >>> said("Outer Hebrides", "what time is it in the outer hebrides"), said("Cancun", "shorts for cancoon")
    (True, False)
    """
    value_words, utterance_words = words(value), words(utterance)
    n = len(value_words)
    return any(utterance_words[i : i + n] == value_words for i in range(len(utterance_words) - n + 1))


COPIED_SHARE = 0.5  # a parameter is copied when at least this share of its example values are said verbatim
SPANNED_SHARE = 0.95  # ... spanned when at least this share of its example values are a piece of the utterance


def verbatim(value: str, utterance: str) -> bool:
    """Whether ``value`` is a piece of ``utterance`` character for character, letters case-blind.

    >>> verbatim("Cities: Skylines 2", "start up cities: skylines 2 please"), verbatim("Cincinnati", "sinsinati")
    (True, False)
    """
    return value.lower() in utterance.lower()


def copied_params(
    examples: list[tuple[str, str]],
    skills: Skills,
    share: float = COPIED_SHARE,
    test: Callable[[str, str], bool] = said,
) -> tuple[str, ...]:
    """The free-text ``skill.param`` names whose value is, in at least ``share`` of ``examples`` (utterance, call)
    that give it, words of the utterance (``test``: :func:`said`; :func:`verbatim` for a piece of it as written):
    places and topics, not durations in digits or math expressions (nor closed sets such as ``add|list``).

    >>> from skillcall.skills import parse_signature
    >>> skills = {s.name: s for s in map(parse_signature, ['weather(location="[p]")', 'timer(duration="[d]")'])}
    >>> copied_params([("rain in oslo", 'weather(location="Oslo")'), ("ten minutes", 'timer(duration="10 minutes")')],
    ...               skills)
    ('weather.location',)
    """
    said_counts: dict[str, list[bool]] = {}
    for utterance, answer in examples:
        call = validate(answer, skills)
        for name, value in call.args:
            if not skills[call.name].param(name).choices:
                said_counts.setdefault(f"{call.name}.{name}", []).append(test(value, utterance))
    return tuple(sorted(k for k, v in said_counts.items() if sum(v) >= share * len(v)))


def said_values(examples: list[tuple[str, str]], params: tuple[str, ...]) -> Iterator[tuple[str, str, int, str]]:
    """For each value of a ``skill.param`` in ``params`` in ``examples`` (utterance, call): the parameter, the
    utterance in lower case, where the value starts in it (-1 if it is not a piece of it) and the value.

    >>> list(said_values([("Ask AI why", 'openai(prompt="why")')], ("openai.prompt",)))
    [('openai.prompt', 'ask ai why', 7, 'why')]
    """
    for utterance, answer in examples:
        call = parse_call(answer)
        for name, value in call.args:
            if (key := f"{call.name}.{name}") in params:
                text = utterance.lower()
                yield key, text, text.find(value.lower()), value


NEVER_FIRST_LEAST = 3  # a word is never_first once it comes before a value in this many examples (and starts none)


def never_first(
    examples: list[tuple[str, str]], params: tuple[str, ...], least: int = NEVER_FIRST_LEAST
) -> dict[str, tuple[str, ...]]:
    """For each ``skill.param`` in ``params``, the words that come before its value in the utterance of at least
    ``least`` of ``examples`` (utterance, call) but start none of its values: the carriers, wake words, articles
    and fillers the examples leave out of it ("ask ai", "tell me a story about the").

    >>> never_first([("ask ai can dogs eat grapes", 'openai(prompt="can dogs eat grapes")')] * 3
    ...             + [("can cats swim", 'openai(prompt="can cats swim")')], ("openai.prompt",))
    {'openai.prompt': ('ai', 'ask')}
    """
    return _left_out(examples, params, least, after=False)


def never_inside(
    examples: list[tuple[str, str]], params: tuple[str, ...], least: int = NEVER_FIRST_LEAST
) -> dict[str, tuple[str, ...]]:
    """For each ``skill.param`` in ``params``, the words that come after its value in the utterance of at least
    ``least`` of ``examples`` but are in no value of any of ``params``: what the examples say after a note or a
    program and never put in one ("descaler stick it on the list": "stick"; not "it", which some prompt holds).

    >>> never_inside([("open gimp before i forget", 'runapp(program="gimp")')] * 3
    ...              + [("open gimp paint", 'runapp(program="gimp paint")'),
    ...                 ("what did i forget", 'openai(prompt="what did i forget")')], ("runapp.program", "openai.prompt"))
    {'runapp.program': ('before',), 'openai.prompt': ()}
    """
    return _left_out(examples, params, least, after=True)


def _left_out(
    examples: list[tuple[str, str]], params: tuple[str, ...], least: int, after: bool
) -> dict[str, tuple[str, ...]]:
    """The words said before (``after`` False) or after each value in ``least`` examples or more that no value of
    its parameter starts with (before) or that no value of any of ``params`` holds (after)."""
    seen: dict[str, dict[str, int]] = {name: {} for name in params}
    kept: dict[str, set[str]] = {name: set() for name in params}
    for key, text, at, value in said_values(examples, params):
        if at < 0 or not (value_words := words(value)):
            continue
        kept[key] |= set(value_words) if after else {value_words[0]}
        for word in set(words(text[at + len(value) :] if after else text[:at])):
            seen[key][word] = seen[key].get(word, 0) + 1
    if after:  # a word some value of any parameter holds may be in any value
        held = set().union(*kept.values())
        kept = {name: held for name in params}
    return {
        k: tuple(sorted(w for w, n in counts.items() if n >= least and w not in kept[k])) for k, counts in seen.items()
    }
