"""Golden tests of the skills' grammar: every call in examples/ is accepted, malformed calls are rejected,
in all three forms (the regex, the Lark text llguidance runs, the GBNF text llama.cpp runs)."""

from pathlib import Path

import llguidance
import pytest
from llguidance import LLMatcher, LLTokenizer, TokenizerWrapper

from skillcall.examples import read_examples_dir
from skillcall.grammar import MAX_DIGITS, skills_grammar
from skillcall.skills import parse_signature

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SKILLS, FILES = read_examples_dir(EXAMPLES)
GRAMMAR = skills_grammar(SKILLS)
CALLS = sorted({p.answer for f in FILES for p in f.pairs})

REJECTED = [
    'history(topic="Rome")',  # unknown skill
    'weather(city="Rome")',  # unknown argument
    'weather(location="Rome", location="Oslo")',  # repeated argument
    'notes(note="milk", action="add")',  # wrong order
    'notes(action="delete")',  # outside the closed set
    'notes(action="Add")',  # closed sets are case-sensitive
    'weather(location="Rome)',  # unbalanced quote
    'weather(location="Ro"me")',  # unescaped quote
    'weather(location="Rome"',  # unbalanced parenthesis
    'weather(location="Rome"))',  # one parenthesis too many
    "weather",  # no argument list
    "weather(location='Rome')",  # not the canonical quote style
    'weather(location="Rome",location="Oslo")',  # not the canonical separator
    'weather(location="")',  # an empty value is written as an absent argument
    'weather(location="Ro\nme")',  # newline inside a value
    'weather(location="Rome\\")',  # a backslash escaping the closing quote
    'timer(duration="5 minutes") timer(duration="1 minute")',  # two calls
    'math(question="350/6' + "0" * MAX_DIGITS + '")',  # a number that runs on
    "other(x)",
    "",
]


class ByteTokenizer:
    """One token per byte plus an end token (256): enough for llguidance to check whole strings."""

    eos_token_id, bos_token_id, special_token_ids = 256, None, [256]
    tokens = [bytes([i]) for i in range(256)] + [b"<end>"]

    def __call__(self, data: bytes) -> list[int]:
        return list(data)


BYTES = LLTokenizer(TokenizerWrapper(ByteTokenizer()))


def matcher_accepts(grammar: str, text: str) -> bool:
    """Feed ``text`` byte by byte to an llguidance matcher, then the end token: all must be allowed."""
    m = LLMatcher(BYTES, grammar, log_level=0)
    assert not m.is_error(), m.get_error()
    return m.consume_tokens(list(text.encode()) + [ByteTokenizer.eos_token_id]) and not m.is_error()


LARK = llguidance.grammar_from("lark", GRAMMAR.lark())
GBNF = llguidance.grammar_from("gbnf", GRAMMAR.gbnf())
ACCEPT = {
    "regex": GRAMMAR.accepts,
    "lark": lambda c: matcher_accepts(LARK, c),
    "gbnf": lambda c: matcher_accepts(GBNF, c),
}


def test_examples_hold_many_calls_of_every_skill():
    assert len(CALLS) > 300 and {c.split("(")[0] for c in CALLS} == set(SKILLS)


@pytest.mark.parametrize("form", ["regex", "lark", "gbnf"])
def test_every_call_in_the_examples_is_accepted(form):
    assert [c for c in CALLS if not ACCEPT[form](c)] == []


@pytest.mark.parametrize("form", ["regex", "lark", "gbnf"])
@pytest.mark.parametrize("text", REJECTED)
def test_malformed_calls_are_rejected(form, text):
    assert not ACCEPT[form](text)


@pytest.mark.parametrize(
    "text",
    [
        'notes(action="list")',
        'notes(note="buy milk")',
        'notes(action="add", note="buy milk")',
        "notes()",
        'math(question="sqrt(16)")',  # parentheses inside a value
        'openai(prompt="say \\"hi\\" and a \\\\ backslash")',  # json.dumps escapes
        'story(description="ein Märchen über Drachen")',  # non-ASCII
        'math(question="' + "9" * MAX_DIGITS + "+" + "9" * MAX_DIGITS + '")',  # the longest numbers allowed
    ],
)
def test_escapes_optional_arguments_and_any_characters_are_accepted(text):
    assert GRAMMAR.accepts(text) and matcher_accepts(LARK, text) and matcher_accepts(GBNF, text)


def test_the_end_token_is_allowed_only_once_the_call_is_complete():
    m = LLMatcher(BYTES, LARK, log_level=0)
    m.consume_tokens(list(b'weather(location="Rome"'))
    end = ByteTokenizer.eos_token_id
    assert not m.is_accepting() and m.compute_logit_bias()[end] == 0
    m.consume_tokens(list(b")"))
    allowed = m.compute_logit_bias()
    assert m.is_accepting() and allowed[end] > 0 and sum(b > 0 for b in allowed) == 1  # nothing but the end


@pytest.mark.parametrize("form", ["lark", "gbnf"])
def test_a_number_that_runs_on_must_end(form):
    """After MAX_DIGITS digits in a row only a non-digit may follow: a greedy "350/6000..." closes instead."""
    m = LLMatcher(BYTES, {"lark": LARK, "gbnf": GBNF}[form], log_level=0)
    assert m.consume_tokens(list(b'math(question="350/6' + b"0" * (MAX_DIGITS - 1)))
    allowed = m.compute_logit_bias()
    assert [chr(b) for b in b"0123456789" if allowed[b] > 0] == []
    assert all(allowed[b] > 0 for b in b'".+)')


def test_gbnf_is_llama_cpp_syntax():
    text = GRAMMAR.gbnf()
    assert text.startswith("root ::= ") and text.endswith("\n")
    names = [line.split(" ::= ")[0] for line in text.splitlines()]
    assert all(n.replace("-", "").isalnum() and n.islower() for n in names)  # llama.cpp: [a-z0-9-] names
    assert len(names) == len(set(names))


def test_gbnf_parses_in_llama_cpp():
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by `make deploy-check` only")
    assert llama_cpp.LlamaGrammar.from_string(GRAMMAR.gbnf(), verbose=False) is not None


def test_a_skill_without_parameters_and_names_that_collide():
    g = skills_grammar({"other": parse_signature("other()")})
    assert g.accepts("other()") and not g.accepts("other( )")
    with pytest.raises(ValueError, match="no skills"):
        skills_grammar({})
