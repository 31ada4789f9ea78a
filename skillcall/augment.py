"""Offline generator: new (utterance, call) pairs from a skill's hand examples; seeded, no network.

Every pair is validated with :func:`skillcall.calls.validate`; the ways to make one:

* slot swap: the argument value is found in the utterance (case-insensitively) and replaced there and in the call
  by another value of the same class (``prompts/augment.yaml``). Durations and math expressions are spelled by
  code, in words or digits, with the canonical digit form in the call;
* surface variant: fillers ("uh", "hey so"), politeness ("could you", "please") where the utterance is an order,
  case and punctuation;
* ``other()``: hand examples with fillers, and a small grammar of chatter, half sentences, noise, background media
  and near-misses that mention a skill's topic without asking.

    >>> [text for text, kind in duration_forms("1 hour 30 minutes") if "half" in text]
    ['one and a half hours', 'an hour and a half', 'one hour and a half']
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, Protocol

import yaml

from skillcall.calls import Call, CallError, parse_call, validate
from skillcall.dataset import normalise
from skillcall.examples import ExampleFile, Pair
from skillcall.numbers import NUMBER, int_words, number_words
from skillcall.skills import OTHER, Skill

VALUES_FILE = "augment.yaml"  # in the prompts directory
SWAP_P = 0.8  # share of outputs from a pair with a slot that swap its value (the rest: surface variant only)
WAKE_P = 0.15  # share of requests that start with a wake word ("alexa ...")
INVOKE_P = 0.35  # share of requests of a skill with invocation phrases that start with one ("ask openai ...")
FALSE_START_P = 0.1  # share of requests that restart their first words ("what's the uh what's the weather")
OTHER_HAND_P = 0.3  # share of other() outputs made from hand examples (the rest: grammar)
TRIES_PER_OUTPUT = 60  # give up after count * this many candidates (the report then shows the shortfall)

QUESTION_WORDS = frozenset(
    "what what's whats how how's who who's why when where which is are do does did can could will would should "
    "any was have has".split()
)


class AugmentError(ValueError):
    """A problem in the values file, naming it."""


# ---------------------------------------------------------------- numbers, durations, expressions in words


def _spell(rng: random.Random, numbers: list[str]) -> list[str]:
    """The numbers all in words or all in digits (30%), as people say them."""
    if rng.random() < 0.3:
        return numbers
    return [rng.choice(number_words(n)) for n in numbers]


_UNITS = ("hour", "minute", "second")
_DURATION_PART = re.compile(r"(\d+) (hour|minute|second)s?")
Duration = tuple[tuple[int, str], ...]


def parse_duration(value: str) -> Duration | None:
    """``"1 hour 30 minutes"`` -> ``((1, "hour"), (30, "minute"))``; None if it is not in that form."""
    parts = tuple((int(n), unit) for n, unit in _DURATION_PART.findall(value))
    return parts if parts and format_duration(parts) == value else None


def format_duration(parts: Duration) -> str:
    """The canonical form: digits and a unit, e.g. ``"1 hour 30 minutes"``."""
    return " ".join(f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts)


def _amounts(n: int, unit: str) -> tuple[list[str], list[str]]:
    """(in words, in digits) of ``n unit``: ``(['an hour', 'one hour'], ['1 hour'])``."""
    plural = unit + ("" if n == 1 else "s")
    words = [f"{w} {plural}" for w in int_words(n)]
    if n == 1:
        words.insert(0, f"{'an' if unit == 'hour' else 'a'} {unit}")
    return words, [f"{n} {plural}"]


def duration_forms(value: str | Duration) -> list[tuple[str, str]]:
    """Every spoken form of a duration with its kind: ``"one"`` (a single unit), ``"many"``, or ``"adj"``
    (before a noun: "a twenty minute timer")."""
    parts = parse_duration(value) if isinstance(value, str) else value
    if not parts:
        return []
    kind = "one" if len(parts) == 1 and parts[0][0] == 1 else "many"
    forms = []
    for style in (0, 1):  # words, digits
        for combo in itertools.product(*(_amounts(n, unit)[style] for n, unit in parts)):
            forms += [(" and ".join(combo), kind)] + ([(" ".join(combo), kind)] if len(combo) > 1 else [])
    if len(parts) == 1:
        n, unit = parts[0]
        forms += [(f"{w} {unit}", "adj") for w in int_words(n) + [str(n)]]
        forms += [(text, kind) for text in _SPECIAL_DURATIONS.get(parts, ())]
    elif len(parts) == 2 and parts[0][1] != "second" and parts[1] == (30, _UNITS[_UNITS.index(parts[0][1]) + 1]):
        n, unit = parts[0]  # 1 hour 30 minutes, 3 minutes 30 seconds
        forms += [(f"{w} and a half {unit}s", kind) for w in int_words(n) + ([str(n)] if n > 1 else [])]
        if n == 1:
            forms += [(f"{'an' if unit == 'hour' else 'a'} {unit} and a half", kind), (f"one {unit} and a half", kind)]
    return forms


_SPECIAL_DURATIONS = {
    ((30, "minute"),): ("half an hour", "a half hour"),
    ((15, "minute"),): ("a quarter of an hour", "a quarter hour"),
    ((45, "minute"),): ("three quarters of an hour",),
}
_COMMON_MINUTES = (2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 35, 40, 45, 50, 60, 90)
_COMMON_SECONDS = (5, 10, 15, 20, 30, 40, 45, 50, 60, 90)


def _sample_duration(rng: random.Random, kind: str) -> Duration:
    """A random duration of the same kind as the one it replaces (see :func:`duration_forms`)."""
    if kind == "one":
        return ((1, rng.choice(_UNITS)),)
    minutes = rng.choice(_COMMON_MINUTES) if rng.random() < 0.6 else rng.randint(2, 59)
    seconds = rng.choice(_COMMON_SECONDS) if rng.random() < 0.6 else rng.randint(5, 59)
    single = rng.choices([((minutes, "minute"),), ((seconds, "second"),), ((rng.randint(2, 5), "hour"),)], [6, 2, 1])[0]
    if kind == "adj" or rng.random() < 0.8:
        return single
    if rng.random() < 0.6:
        return ((rng.randint(1, 3), "hour"), (rng.choice((5, 10, 15, 20, 30, 40, 45, 50)), "minute"))
    return ((rng.randint(1, 9), "minute"), (rng.choice((10, 15, 20, 30, 45)), "second"))


# math kinds: name -> (pattern of the canonical expression, canonical format); operands are the groups
_MATH = {
    "percent": (rf"({NUMBER})/100\*({NUMBER})", "{}/100*{}"),
    "times": (rf"({NUMBER})\*({NUMBER})", "{}*{}"),
    "plus": (rf"{NUMBER}(?:\+{NUMBER})+", "+"),  # any number of terms, joined with "+"
    "minus": (rf"({NUMBER})-({NUMBER})", "{}-{}"),
    "divided": (rf"({NUMBER})/({NUMBER})", "{}/{}"),
    "square": (rf"({NUMBER})\*\*2", "{}**2"),
    "cube": (rf"({NUMBER})\*\*3", "{}**3"),
    "power": (rf"({NUMBER})\*\*({NUMBER})", "{}**{}"),
    "sqrt": (rf"sqrt\(({NUMBER})\)", "sqrt({})"),
}
_PERCENTS = ("5", "10", "12.5", "15", "18", "20", "25", "30", "40", "50", "60", "75", "80", "90")


def _operands(kind: str, expression: str) -> list[str] | None:
    match = re.fullmatch(_MATH[kind][0], expression)
    if not match:
        return None
    return expression.split("+") if kind == "plus" else list(match.groups())


def _expression(kind: str, operands: list[str]) -> str:
    return "+".join(operands) if kind == "plus" else _MATH[kind][1].format(*operands)


def _sample_operands(rng: random.Random, kind: str, arity: int) -> list[str]:
    """Operands that make a sensible question of this kind (exact divisions, perfect squares, ...)."""
    r = rng.randint
    if kind == "times":
        a, b = (r(2, 20), r(2, 20)) if rng.random() < 0.75 else (r(10, 999), r(2, 50))
    elif kind == "plus":
        return [str(r(1, 200) if rng.random() < 0.8 else r(100, 5000)) for _ in range(arity)]
    elif kind == "minus":
        a = r(10, 1000)
        b = r(1, a - 1)
    elif kind == "divided":
        b = r(2, 20)
        a = b * r(2, 50) if rng.random() < 0.8 else r(10, 1000)
    elif kind == "percent":
        return [rng.choice(_PERCENTS), str(r(2, 100) * 10)]
    elif kind == "power":
        a, b = r(2, 12), r(2, 10)
    elif kind in ("square", "cube"):
        return [str(r(2, 99) if kind == "square" else r(2, 20))]
    else:  # sqrt
        return [str(r(2, 40) ** 2 if rng.random() < 0.85 else r(2, 1000))]
    return [str(a), str(b)]


# ---------------------------------------------------------------- slots: find a value, sample a replacement


@dataclass(frozen=True)
class Segment:
    """A piece of an utterance. A slot segment spells the argument ``param``; its value in the call is
    ``value``, or the segment's own text when ``value`` is None (the answer follows the utterance)."""

    text: str
    param: str | None = None
    value: str | None = None
    kind: str = ""  # the slot's class: replacements come from the same class


class Slot(Protocol):
    def find(self, utterance: str, value: str) -> tuple[int, int, str] | None:
        """(start, end, kind) of ``value`` spelled in ``utterance``, or None."""

    def follows(self, spoken: str, value: str) -> bool:
        """Whether the call's value is the spoken text itself (then case changes apply to both)."""

    def sample(self, rng: random.Random, segment: Segment) -> Segment:
        """A replacement for a slot segment, with the same ``param`` and ``kind``."""


def _search(utterance: str, phrase: str) -> re.Match | None:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", utterance, re.I)


def _longest(utterance: str, forms: list[tuple[str, str]]) -> tuple[int, int, str] | None:
    found = [(m.start(), m.end(), kind) for text, kind in forms if (m := _search(utterance, text))]
    return max(found, key=lambda f: (f[1] - f[0], -f[0]), default=None)


_ARTICLE = re.compile(r"^(?:an?|the)\s+", re.I)


def strip_article(value: str) -> str:
    """``"the housing market"`` -> ``"housing market"``: topics and descriptions carry no leading article."""
    return _ARTICLE.sub("", value, count=1)


@dataclass(frozen=True)
class ValueSlot:
    """Values from lists, by class. ``case``: "proper" (the call keeps the listed spelling) or "verbatim".
    ``articles``: a leading article is said but not part of the value ("about a dragon" -> ``"dragon"``)."""

    classes: dict[str, list[str]]
    case: str = "verbatim"
    default: str | None = None
    tail_punct: bool = False
    articles: bool = False

    def _key(self, value: str) -> str:
        value = value.rstrip(".?!").lower()
        return strip_article(value) if self.articles else value

    def class_of(self, value: str) -> str | None:
        key = self._key(value)
        return next((c for c, vs in self.classes.items() if key in map(self._key, vs)), self.default)

    def find(self, utterance: str, value: str) -> tuple[int, int, str] | None:
        kind, match = self.class_of(value), _search(utterance, value)
        if not (kind and match):
            return None
        before = re.search(r"(?<!\w)(?:an?|the)\s+$", utterance[: match.start()], re.I) if self.articles else None
        return (before.start() if before else match.start(), match.end(), kind)

    def follows(self, spoken: str, value: str) -> bool:
        return self.case == "verbatim" and spoken == value

    def sample(self, rng: random.Random, segment: Segment) -> Segment:
        current = segment.text.lower()
        values = self.classes[segment.kind]
        value = rng.choice([v for v in values if v.rstrip(".?!").lower() != current] or values)
        value = value.rstrip(".?!")
        if self.case == "proper":
            return replace(segment, text=value.lower() if segment.text.islower() else value, value=value)
        if self.articles and strip_article(value) != value:
            return replace(segment, text=value, value=strip_article(value))
        return replace(segment, text=value, value=None)


class DurationSlot:
    """Timer durations: "twenty five minutes" / "25 minutes" / "an hour and a half" -> ``"25 minutes"``..."""

    def find(self, utterance: str, value: str) -> tuple[int, int, str] | None:
        return _longest(utterance, duration_forms(value))

    def follows(self, spoken: str, value: str) -> bool:
        return False

    def sample(self, rng: random.Random, segment: Segment) -> Segment:
        parts = _sample_duration(rng, segment.kind)
        forms = [text for text, kind in duration_forms(parts) if kind == segment.kind]
        if not re.match(r"an? ", segment.text, re.I):  # "timer for an hour" but not "set timer an hour"
            forms = [f for f in forms if not re.match(r"an? ", f)]
        digits = [f for f in forms if f[0].isdigit()]
        words = [f for f in forms if f not in digits]
        spoken = rng.choice(digits if digits and (rng.random() < 0.3 or not words) else words)
        return replace(segment, text=spoken, value=format_duration(parts))


@dataclass(frozen=True)
class MathSlot:
    """Math expressions: "twelve times eight" / "12 times 8" -> ``"12*8"``; a swap keeps the operation."""

    templates: dict[str, list[str]]

    def _spoken(self, kind: str, numbers: list[str]) -> list[str]:
        if len(numbers) > 2:
            return [" plus ".join(numbers)]
        return [t.format(a=numbers[0], b=numbers[-1]) for t in self.templates.get(kind, [])]

    def find(self, utterance: str, value: str) -> tuple[int, int, str] | None:
        forms = []
        for kind in _MATH:
            operands = _operands(kind, value)
            if operands:
                for numbers in itertools.product(*([*number_words(o), o] for o in operands)):
                    forms += [(text, f"{kind}:{len(operands)}") for text in self._spoken(kind, list(numbers))]
        return _longest(utterance, forms)

    def follows(self, spoken: str, value: str) -> bool:
        return False

    def sample(self, rng: random.Random, segment: Segment) -> Segment:
        kind, arity = segment.kind.split(":")
        operands = _sample_operands(rng, kind, int(arity))
        spoken = rng.choice(self._spoken(kind, _spell(rng, operands)))
        return replace(segment, text=spoken, value=_expression(kind, operands))


# ---------------------------------------------------------------- the values file


@dataclass(frozen=True)
class Surface:
    fillers: list[str]
    polite_prefixes: list[str]
    polite_suffixes: list[str]
    imperative_verbs: frozenset[str]
    wake_words: list[str] = field(default_factory=list)  # "alexa": said before a request, never part of a value
    invocations: dict[str, list[str]] = field(default_factory=dict)  # skill -> "ask openai": carriers, not content
    false_starts: list[str] = field(default_factory=list)  # "uh": between a restarted opening and the request


@dataclass(frozen=True)
class OtherGrammar:
    fillers: list[str]
    suffixes: list[str]
    suffix_families: list[str]
    families: dict[str, list[str]]
    lists: dict[str, list[str]]

    def expand(self, template: str, rng: random.Random) -> str:
        """Replace each ``{name}`` by a random item of ``lists[name]``, recursively."""
        return re.sub(r"\{(\w+)\}", lambda m: self.expand(rng.choice(self.lists[m.group(1)]), rng), template)


@dataclass(frozen=True)
class Values:
    slots: dict[str, Slot]  # "weather.location" -> slot
    surface: Surface
    other: OtherGrammar


def _strings(data: object, where: str) -> list[str]:
    if not isinstance(data, list) or not data or not all(isinstance(v, str) for v in data):
        raise AugmentError(f"{where}: expected a non-empty list of strings (quote values such as 'no' or 42)")
    return data


def _slot(spec: dict, where: str) -> Slot:
    kind = spec.get("type", "values")
    if kind == "duration":
        return DurationSlot()
    if kind == "math":
        return MathSlot({k: _strings(v, f"{where}.templates.{k}") for k, v in spec["templates"].items()})
    if kind != "values":
        raise AugmentError(f"{where}.type: expected values, duration or math, got {kind!r}")
    classes = {c: _strings(v, f"{where}.classes.{c}") for c, v in spec["classes"].items()}
    if spec.get("default") not in (None, *classes):
        raise AugmentError(f"{where}.default: {spec['default']!r} is not one of its classes")
    if spec.get("case", "verbatim") not in ("proper", "verbatim"):
        raise AugmentError(f"{where}.case: expected proper or verbatim")
    flags = bool(spec.get("tail_punct")), bool(spec.get("articles"))
    return ValueSlot(classes, spec.get("case", "verbatim"), spec.get("default"), *flags)


def load_values(path: str | Path) -> Values:
    """Read ``prompts/augment.yaml``; errors name the file and the key."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    try:
        slots = {name: _slot(spec, f"{path}: slots.{name}") for name, spec in data["slots"].items()}
        s, o = data["surface"], data["other"]
        surface = Surface(
            *(_strings(s[k], f"{path}: surface.{k}") for k in ("fillers", "polite_prefixes", "polite_suffixes")),
            frozenset(_strings(s["imperative_verbs"], f"{path}: surface.imperative_verbs")),
            _strings(s["wake_words"], f"{path}: surface.wake_words"),
            {k: _strings(v, f"{path}: surface.invocations.{k}") for k, v in s["invocations"].items()},
            _strings(s["false_starts"], f"{path}: surface.false_starts"),
        )
        lists = {k: _strings(v, f"{path}: other.lists.{k}") for k, v in o["lists"].items()}
        families = {k: _strings(v, f"{path}: other.families.{k}") for k, v in o["families"].items()}
        fillers, suffixes, suffix_families = (
            _strings(o[k], f"{path}: other.{k}") for k in ("fillers", "suffixes", "suffix_families")
        )
        other = OtherGrammar(fillers, suffixes, suffix_families, families, lists)
    except (KeyError, TypeError, AttributeError) as e:
        raise AugmentError(f"{path}: missing or malformed section {e}") from None
    for where, texts in [
        *(("families." + k, v) for k, v in families.items()),
        *(("lists." + k, v) for k, v in lists.items()),
    ]:
        for text in texts:
            unknown = set(re.findall(r"\{(\w+)\}", text)) - set(lists)
            if unknown:
                raise AugmentError(f"{path}: other.{where}: {text!r} uses unknown list(s) {', '.join(sorted(unknown))}")
    return Values(slots, surface, other)


# ---------------------------------------------------------------- templates from hand pairs, and their variants


class Proposal(NamedTuple):
    user: str
    call: Call
    method: str  # how it was made, counted in the report
    origin: str  # the hand pair's place or the other() grammar family it comes from


@dataclass(frozen=True)
class Template:
    segments: tuple[Segment, ...]  # the core: no leading filler/politeness, no trailing "please" or punctuation
    args: tuple[tuple[str, str], ...]  # the hand call's arguments
    origin: str = ""  # the hand pair's place, "examples/weather.txt:12"

    @property
    def has_slot(self) -> bool:
        return any(s.param for s in self.segments)


def _core_bounds(text: str, spans: list[tuple], surface: Surface) -> tuple[int, int]:
    """Start and end of an utterance's core: after leading fillers and politeness before an order ("um could you
    | set a timer"), before a trailing "please"/"thanks" and punctuation; never inside an argument's value."""
    fillers = "|".join(re.escape(f) for f in sorted(surface.fillers, key=len, reverse=True))
    start = re.match(rf"(?:(?:{fillers})\b[\s,]*)*", text, re.I).end()
    polite = re.match(r"(?:please\s+|(?:can|could|would|will)\s+you\s+(?:please\s+)?)", text[start:], re.I)
    if polite and _first_word(text[start + polite.end() :]) in surface.imperative_verbs:
        start += polite.end()
    if spans and start > spans[0][0]:
        start = 0
    end = re.search(r"(?:,?\s+(?:please|thanks|thank you))?[\s.,?!]*$", text, re.I).start()
    if spans and text[end : spans[-1][1]].strip(" .?!"):
        end = re.search(r"[\s.?!]*$", text).start()
    return start, end


def make_template(pair: Pair, skill: Skill, slots: dict[str, Slot], surface: Surface) -> Template:
    """Find each free-text argument in the utterance and cut the utterance's core into text and slot segments.

    >>> from skillcall.skills import parse_signature
    >>> skill = parse_signature('weather(location="[location]")')
    >>> slot = ValueSlot({"place": ["Oslo", "Rome"]}, "proper")
    >>> surface = Surface(["um"], ["please"], ["please"], frozenset({"tell"}))
    >>> pair = Pair("um could you tell me the weather in oslo, please?", 'weather(location="Oslo")', "weather")
    >>> [(s.text, s.param, s.value) for s in make_template(pair, skill, {"weather.location": slot}, surface).segments]
    [('tell me the weather in ', None, None), ('oslo', 'location', 'Oslo')]
    """
    text, call = pair.user, parse_call(pair.answer)
    spans = []
    for name, value in call.args:
        param, slot = skill.param(name), slots.get(f"{skill.name}.{name}")
        found = slot.find(text, value) if slot and param and not param.choices else None
        if found:
            spans.append((*found, name, None if slot.follows(text[found[0] : found[1]], value) else value))
    spans.sort()
    start, end = _core_bounds(text, spans, surface)
    segments, pos = [], start
    for s, e, kind, name, value in spans:
        if s >= pos:  # two values in the same place: keep the first
            segments += [Segment(text[pos:s]), Segment(text[s : min(e, end)], name, value, kind)]
            pos = min(e, end)
    segments.append(Segment(text[pos:end]))
    return Template(tuple(s for s in segments if s.text or s.param), call.args, pair.file)


def _first_word(text: str) -> str:
    words = text.split()
    return words[0].lower().strip(",.?!") if words else ""


def _article(word: str) -> str:
    """ "an" before a vowel sound: an hour, an eight, an 11, a unicorn."""
    w = word.lower()
    if re.match(r"8|1[18](?:\d{3})?(?!\d)", w) or w.startswith(("hour", "honest", "honor")):
        return "an"
    return "an" if w[:1] in tuple("aeiou") and not w.startswith(("one", "uni", "use", "eu", "ur")) else "a"


def _fix_articles(segments: list[Segment]) -> list[Segment]:
    out = list(segments)
    for i in range(1, len(out)):
        before, seg = out[i - 1], out[i]
        match = re.search(r"(?<!\w)([Aa]n?)(\s+)$", before.text)
        if seg.param and match and seg.text:
            article = _article(seg.text.split()[0])
            article = article.capitalize() if match.group(1)[0] == "A" else article
            out[i - 1] = replace(before, text=before.text[: match.start()] + article + match.group(2))
    return out


def _strip_punct(text: str) -> str:
    """Drop sentence punctuation, keep apostrophes and decimal points."""
    return re.sub(r"[.,!?;:]+(?=\s|$)", "", text)


def _decapitalise(segments: list[Segment]) -> list[Segment]:
    """Lower the first letter after a new prefix ("Open Spotify" -> "could you open Spotify"), but not "I"
    or a name the call spells differently."""
    first = segments[0]
    word = first.text.split()[0] if first.text.split() else ""
    if word[:1].isupper() and word[1:].islower() and word not in ("I", "I'm", "I'd", "I'll", "I've"):
        if first.param is None or first.value is None:
            return [replace(first, text=first.text[0].lower() + first.text[1:]), *segments[1:]]
    return segments


def _decorate(segments: list[Segment], rng: random.Random, surface: Surface) -> tuple[list[Segment], bool]:
    """Add a filler or politeness before and maybe "please"/"thanks" after; returns (segments, is_question)."""
    core = "".join(s.text for s in segments)
    imperative = _first_word(core) in surface.imperative_verbs
    question = _first_word(core) in QUESTION_WORDS
    r, prefix, suffix = rng.random(), "", ""
    if r < 0.35:
        prefix = rng.choice(surface.fillers)
    elif r < 0.6 and imperative:
        prefix = rng.choice(surface.polite_prefixes)
        question = bool(re.search(r"\b(can|could|would|will) you\b", prefix))
    if rng.random() < 0.25:
        suffix = rng.choice(surface.polite_suffixes)
        if suffix.lower() in core.lower() or ("please" in prefix and "please" in suffix):
            suffix = ""
        if " me" in suffix and (not imperative or re.search(r"\bme\b", core, re.I)):
            suffix = ""
    if suffix.startswith("thank"):
        question = False  # "Is it raining in Oslo thanks." rather than "... thanks?"
    if prefix:
        segments = [Segment(prefix + " "), *_decapitalise(segments)]
    if suffix:
        segments = [*segments, Segment(" " + suffix)]
    return segments, question


def _speech(segments: list[Segment], rng: random.Random, surface: Surface) -> list[Segment]:
    """Maybe a false start ("set a uh set a timer") and a wake word ("alexa"): new text segments before the
    request, so no argument value changes."""
    words = "".join(s.text for s in segments).split()
    if surface.false_starts and len(words) > 2 and rng.random() < FALSE_START_P:
        opening = " ".join(words[: rng.randint(1, 2)])
        segments = [Segment(f"{opening} {rng.choice(surface.false_starts)} "), *segments]
    if surface.wake_words and rng.random() < WAKE_P:
        segments = [Segment(rng.choice(surface.wake_words) + " "), *_decapitalise(segments)]
    return segments


def _case(segments: list[Segment], rng: random.Random, question: bool, tail_punct: bool) -> list[Segment]:
    """Keep the case (40%), lower case without punctuation as speech recognition writes it (45%), or a
    capitalised sentence with "." or "?".
    ``tail_punct``: a final mark belongs to the last segment's value (``openai(prompt="Who wrote Hamlet?")``)."""
    r = rng.random()
    if r < 0.4:
        return segments
    if r < 0.85:
        return [replace(s, text=_strip_punct(s.text.lower())) for s in segments]
    first = segments[0]
    segments = [replace(first, text=first.text[:1].upper() + first.text[1:]), *segments[1:]]
    last, mark = segments[-1], "?" if question else "."
    if last.param and (last.value is not None or not tail_punct):
        return [*segments, Segment(mark)]
    return [*segments[:-1], replace(last, text=last.text.rstrip() + mark)]


def _assemble(segments: list[Segment], skill: Skill, args: tuple[tuple[str, str], ...]) -> tuple[str, Call]:
    values = dict(args)
    for seg in segments:
        if seg.param:
            values[seg.param] = " ".join(seg.text.split()) if seg.value is None else seg.value
    return " ".join("".join(s.text for s in segments).split()), Call(skill.name, tuple(values.items()))


def _propose(rng: random.Random, templates: list[Template], skill: Skill, values: Values) -> Proposal:
    """One candidate from a random hand template: a slot swap (``SWAP_P``) or only a surface variant."""
    template = rng.choice(templates)
    segments, method = list(template.segments), "surface"
    if template.has_slot and rng.random() < SWAP_P:
        segments = [values.slots[f"{skill.name}.{s.param}"].sample(rng, s) if s.param else s for s in segments]
        segments, method = _fix_articles(segments), "swap"
    surface = values.surface
    if surface.invocations.get(skill.name) and segments[0].param and rng.random() < INVOKE_P:  # none said yet
        segments, question = (
            [Segment(rng.choice(surface.invocations[skill.name]) + " "), *_decapitalise(segments)],
            False,
        )
    else:
        segments, question = _decorate(segments, rng, surface)
    segments = _speech(segments, rng, surface)
    last = segments[-1]
    tail_punct = bool(last.param) and getattr(values.slots[f"{skill.name}.{last.param}"], "tail_punct", False)
    user, call = _assemble(_case(segments, rng, question, tail_punct), skill, template.args)
    return Proposal(user, call, method, template.origin)


def _propose_other(rng: random.Random, hand: list[Pair], grammar: OtherGrammar) -> Proposal:
    """One non-request: a hand example (``OTHER_HAND_P``) or a grammar sentence, maybe with a filler; lower case
    without punctuation 30% of the time (no capitalised sentence: half sentences and noise have no full stop)."""
    if hand and rng.random() < OTHER_HAND_P:
        pair = rng.choice(hand)
        text, method, origin = pair.user, "hand", pair.file
    else:
        method, template = rng.choice([(f, t) for f, templates in grammar.families.items() for t in templates])
        text, origin = grammar.expand(template, rng), f"{VALUES_FILE}:other.{method}"
    r = rng.random()
    if r < 0.35:
        text = f"{rng.choice(grammar.fillers)} {text}"
    elif r < 0.5 and method in grammar.suffix_families:
        text = f"{text} {rng.choice(grammar.suffixes)}"
    if rng.random() < 0.3:
        text = _strip_punct(text.lower())
    return Proposal(" ".join(text.split()), Call(OTHER, ()), f"other:{method}", origin)


@dataclass
class NewPairs:
    """Valid candidates kept unless they repeat (normalised) a hand example or an earlier candidate."""

    hand_keys: set[str]
    pairs: list[Pair] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    counts: Counter = field(default_factory=Counter)

    @classmethod
    def against(cls, hand: ExampleFile) -> NewPairs:
        return cls({normalise(p.user) for p in hand.pairs})

    def offer(self, pair: Pair) -> bool:
        """Count a valid candidate; keep it and return True if it is new."""
        key = normalise(pair.user)
        self.counts["valid"] += 1
        if key in self.hand_keys:
            self.counts["duplicates_of_hand"] += 1
        elif key in self.seen:
            self.counts["duplicates"] += 1
        else:
            self.seen.add(key)
            self.pairs.append(pair)
            return True
        return False

    def report(self, invalid: Counter) -> dict:
        """Counts received / valid / invalid by reason / duplicates, for the per-skill report."""
        c = self.counts
        return {
            "received": c["received"],
            "valid": c["valid"],
            "invalid": dict(sorted(invalid.items())),
            "duplicates_of_hand": c["duplicates_of_hand"],
            "duplicates": c["duplicates"],
        }


def augment(hand: ExampleFile, count: int, seed: int, values: Values) -> tuple[list[Pair], dict]:
    """``count`` new valid pairs, none equal (normalised) to a hand pair or to each other, and the counts
    for the report. Deterministic for a given seed, skill file and values file."""
    skill = hand.skill
    rng = random.Random(f"{seed}:{skill.name}")
    if skill.name == OTHER:

        def propose() -> Proposal:
            return _propose_other(rng, hand.pairs, values.other)
    else:
        templates = [make_template(p, skill, values.slots, values.surface) for p in hand.pairs]
        templates = [t for t in templates if "".join(s.text for s in t.segments).strip()]
        if not templates:
            raise AugmentError(f"{hand.path}: no hand examples to augment")

        def propose() -> Proposal:
            return _propose(rng, templates, skill, values)

    kept, invalid, methods = NewPairs.against(hand), Counter(), Counter()
    while len(kept.pairs) < count and kept.counts["received"] < count * TRIES_PER_OUTPUT:
        user, call, method, origin = propose()
        kept.counts["received"] += 1
        try:
            answer = str(validate(call, {skill.name: skill}))
        except CallError as e:
            invalid[e.reason] += 1
            continue
        if not normalise(user):
            invalid["empty_utterance"] += 1
            continue
        if kept.offer(Pair(user, answer, skill.name, origin=origin)):
            methods[method] += 1
    return kept.pairs, kept.report(invalid) | {"methods": dict(sorted(methods.items()))}
