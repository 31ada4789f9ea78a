r"""The skills' grammar, built from the signature lines only: one structure, emitted as GBNF and as Lark.

A call is written the canonical way (:class:`skillcall.calls.Call`): ``name(param="value", ...)``, double
quotes, ``", "`` between arguments, arguments optional but in signature order, none repeated. A closed
value set (``action="add|list"``) becomes alternatives; a free-text value is one or more characters other
than a quote, backslash or newline, or the escapes ``\"`` and ``\\`` (``json.dumps`` writes them), with no
run of more than ``MAX_DIGITS`` digits: a number that runs on (``350/6000000...``) must end, so no greedy answer
is cut off by ``max_new_tokens`` inside one. ``other()`` is one more skill. The grammar is regular (no
recursion), so it is also a Python regex.

- :meth:`Grammar.gbnf`: llama.cpp's GBNF (``root ::= ...``), what a llama.cpp server takes in ``grammar``.
- :meth:`Grammar.lark`: the Lark form llguidance (the constrained decoder of eval and predict) takes.
- :meth:`Grammar.regex`: the same language as a Python regex, for quick checks.

    >>> from skillcall.skills import parse_signature
    >>> g = skills_grammar({s.name: s for s in map(parse_signature, ['notes(action="add|list", note="[n]")', "other()"])})
    >>> print(g.gbnf(), end="")
    root ::= notes | other
    notes ::= "notes(" (notes-args-0)? ")"
    notes-args-0 ::= notes-action (", " notes-args-1)? | notes-args-1
    notes-args-1 ::= notes-note
    notes-action ::= "action=\"" ("add" | "list") "\""
    notes-note ::= "note=\"" free-text "\""
    other ::= "other()"
    free-text ::= [0-9]{1,20} | [0-9]{0,20} (([^"\\\n\r0-9] | "\\" ["\\]) [0-9]{0,20})+
    >>> g.accepts('notes(action="add", note="buy \\"milk\\"")'), g.accepts('notes(note="x", action="add")')
    (True, False)
    >>> g.accepts('notes(note="card 4000123412341234")'), g.accepts('notes(note="' + "9" * 21 + '")')
    (True, False)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from skillcall.skills import Skill, Skills

GBNF_FILE = "skills.gbnf"
FREE_TEXT = "free-text"  # the GBNF rule of a free-text value


@dataclass(frozen=True)
class Lit:
    """A literal string."""

    text: str


@dataclass(frozen=True)
class Ref:
    """A reference to another rule."""

    name: str


@dataclass(frozen=True)
class Choice:
    """One of several literal strings (a closed value set)."""

    options: tuple[str, ...]


@dataclass(frozen=True)
class Text:
    """Free text inside double quotes: one or more characters, no unescaped quote, backslash or newline."""


@dataclass(frozen=True)
class Opt:
    """An optional sequence."""

    items: tuple


Item = Lit | Ref | Choice | Text | Opt
Alternative = tuple[Item, ...]

MAX_DIGITS = 20  # digits in a row a value may hold (the longest in examples/ is 10; a credit card's is 16-19)
# the free-text value, in each syntax: digit runs of 1..MAX_DIGITS, each next to another character or the ends
_D = f"[0-9]{{0,{MAX_DIGITS}}}"
_TEXT_GBNF = f'[0-9]{{1,{MAX_DIGITS}}} | {_D} (([^"\\\\\\n\\r0-9] | "\\\\" ["\\\\]) {_D})+'
_TEXT_REGEX = rf'(?:[0-9]{{1,{MAX_DIGITS}}}|{_D}(?:(?:[^"\\\n\r0-9]|\\["\\]){_D})+)'
_TEXT_LARK = f"/{_TEXT_REGEX}/"


def _rule_name(*parts: str) -> str:
    """A name valid in GBNF (letters, digits, ``-``) and, lowered with ``_``, in Lark."""
    return "-".join(re.sub(r"[^A-Za-z0-9]+", "-", p).strip("-").lower() for p in parts)


@dataclass(frozen=True)
class Grammar:
    """Named rules, each a tuple of alternatives (sequences of items); ``root`` is the start rule."""

    rules: dict[str, tuple[Alternative, ...]]

    def gbnf(self) -> str:
        """The GBNF text, one rule per line, llama.cpp's syntax."""

        def item(x: Item) -> str:
            if isinstance(x, Lit):
                return json.dumps(x.text, ensure_ascii=False)
            if isinstance(x, Ref):
                return x.name
            if isinstance(x, Choice):
                return "(" + " | ".join(json.dumps(o, ensure_ascii=False) for o in x.options) + ")"
            if isinstance(x, Text):
                return FREE_TEXT
            return "(" + " ".join(map(item, x.items)) + ")?"

        lines = [
            f"{name} ::= {' | '.join(' '.join(map(item, alt)) for alt in alts)}" for name, alts in self.rules.items()
        ]
        return "\n".join(lines + [f"{FREE_TEXT} ::= {_TEXT_GBNF}"]) + "\n"

    def lark(self) -> str:
        """The Lark text for llguidance (``start`` is the root; rule names use ``_``; TEXT is a regex terminal)."""

        def name(n: str) -> str:
            return "start" if n == "root" else n.replace("-", "_")

        def item(x: Item) -> str:
            if isinstance(x, Lit):
                return json.dumps(x.text, ensure_ascii=False)
            if isinstance(x, Ref):
                return name(x.name)
            if isinstance(x, Choice):
                return "(" + " | ".join(json.dumps(o, ensure_ascii=False) for o in x.options) + ")"
            if isinstance(x, Text):
                return "TEXT"
            return "(" + " ".join(map(item, x.items)) + ")?"

        lines = [f"{name(n)}: {' | '.join(' '.join(map(item, alt)) for alt in alts)}" for n, alts in self.rules.items()]
        return "\n".join(lines + [f"TEXT: {_TEXT_LARK}"]) + "\n"

    def regex(self) -> str:
        """The language as one Python regex (the rules do not recurse)."""

        def rule(n: str) -> str:
            return "(?:" + "|".join("".join(map(item, alt)) for alt in self.rules[n]) + ")"

        def item(x: Item) -> str:
            if isinstance(x, Lit):
                return re.escape(x.text)
            if isinstance(x, Ref):
                return rule(x.name)
            if isinstance(x, Choice):
                return "(?:" + "|".join(map(re.escape, x.options)) + ")"
            if isinstance(x, Text):
                return _TEXT_REGEX
            return "(?:" + "".join(map(item, x.items)) + ")?"

        return rule("root")

    def accepts(self, text: str) -> bool:
        """Whether ``text`` is a sentence of the grammar (through :meth:`regex`)."""
        return re.fullmatch(self.regex(), text) is not None


def _skill_rules(skill: Skill) -> dict[str, tuple[Alternative, ...]]:
    """``weather ::= "weather(" weather-args-0? ")"`` and its argument rules.

    ``<skill>-args-<i>`` is a non-empty, ordered subset of the parameters from the i-th on:
    the i-th parameter then optionally ``", "`` and more, or the subset starting later.
    """
    base = _rule_name(skill.name)
    if not skill.params:
        return {base: ((Lit(f"{skill.name}()"),),)}
    rules: dict[str, tuple[Alternative, ...]] = {
        base: ((Lit(f"{skill.name}("), Opt((Ref(f"{base}-args-0"),)), Lit(")")),)
    }
    n = len(skill.params)
    for i, p in enumerate(skill.params):
        arg = Ref(_rule_name(skill.name, p.name))
        if i == n - 1:
            rules[f"{base}-args-{i}"] = ((arg,),)
        else:
            nxt = Ref(f"{base}-args-{i + 1}")
            rules[f"{base}-args-{i}"] = ((arg, Opt((Lit(", "), nxt))), (nxt,))
    for p in skill.params:
        value: Item = Choice(p.choices) if p.choices else Text()
        rules[_rule_name(skill.name, p.name)] = ((Lit(f'{p.name}="'), value, Lit('"')),)
    return rules


def skills_grammar(skills: Skills) -> Grammar:
    r"""The grammar of every skill's calls: ``root ::= <skill> | ...`` (``other()`` is one of the skills).

    >>> from skillcall.skills import parse_signature
    >>> print(skills_grammar({"other": parse_signature("other()")}).lark(), end="")
    start: other
    other: "other()"
    TEXT: /(?:[0-9]{1,20}|[0-9]{0,20}(?:(?:[^"\\\n\r0-9]|\\["\\])[0-9]{0,20})+)/
    """
    if not skills:
        raise ValueError("no skills: a grammar needs at least one signature")
    rules: dict[str, tuple[Alternative, ...]] = {"root": tuple((Ref(_rule_name(s)),) for s in skills)}
    for skill in skills.values():
        clash = set(_skill_rules(skill)) & (set(rules) | {FREE_TEXT})
        if clash:
            raise ValueError(f"skill {skill.name!r}: grammar rule names {sorted(clash)} are taken")
        rules |= _skill_rules(skill)
    return Grammar(rules)


def write_gbnf(skills: Skills, path: str) -> str:
    """Write the GBNF of ``skills`` to ``path`` (e.g. ``models/export/skills.gbnf``); returns the text."""
    text = skills_grammar(skills).gbnf()
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return text
