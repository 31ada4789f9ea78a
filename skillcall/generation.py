"""Batched greedy generation: shared-prefix KV cache, left padding, stopping at the end of the turn, and an
optional grammar constraint (llguidance: only tokens that keep the answer a sentence of the skills' grammar).

Used by eval, predict, train's sample predictions and the export check; knows nothing of scoring.

    >>> common_prefix_len([[1, 2, 3], [1, 2, 4, 5]])
    2
"""

from __future__ import annotations

import bisect
import re
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tqdm import tqdm

from skillcall.addressee import WAKE
from skillcall.calls import HESITATIONS, WORD, correction_end, could_start_call, said_values, words
from skillcall.grammar import Grammar
from skillcall.places import place_words
from skillcall.prompting import Prompter
from skillcall.skills import OTHER


@dataclass(frozen=True)
class Generation:
    text: str  # the model's answer: decoded, cut at the end of the turn
    latency_ms: float  # (its batch's wall time + a share of the prefix's) / batch size


def common_prefix_len(seqs: list[list[int]]) -> int:
    """Length of the token prefix shared by every sequence, leaving at least one token in each.

    >>> common_prefix_len([[1, 2, 3], [1, 2, 4, 5]])
    2
    >>> common_prefix_len([[1, 2], [1, 2]])
    1
    """
    n, shortest = 0, min(map(len, seqs))
    while n < shortest - 1 and all(s[n] == seqs[0][n] for s in seqs):
        n += 1
    return n


def stopping_criteria(tokenizer: Any, prompt_len: int, stops: list[str]) -> Any:
    """Stop each sequence once its generated text contains one of ``stops`` (end of turn, newline)
    or its first line can no longer become a call (the base model's prose: scoring reads only the
    first line, so this changes no metric but ``lenient_accuracy`` of text after the prose starts).

    Works for stops that span several tokens (``</s>`` in a raw prompt), which ``eos_token_id`` cannot.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            texts = tokenizer.batch_decode(input_ids[:, prompt_len:])
            words = tokenizer.batch_decode(input_ids[:, prompt_len:], skip_special_tokens=True)
            done = [any(s in t for s in stops) or not could_start_call(w) for t, w in zip(texts, words, strict=True)]
            return torch.tensor(done, device=input_ids.device)

    return StoppingCriteriaList([StopOnText()])


_LL_TOKENIZERS: dict[tuple, tuple[Any, Any]] = {}


class Constraint:
    """A grammar compiled for one tokenizer (llguidance): :meth:`processor` makes the per-batch logits processor.

    The end tokens (the tokenizer's eos and the prompt format's end of turn, when it is one token) are allowed
    exactly when the call is complete; then nothing else is.
    """

    def __init__(self, grammar: Grammar, prompter: Prompter, vocab_size: int):
        import llguidance
        import llguidance.hf

        tokenizer = prompter.tokenizer
        ends = [tokenizer.eos_token_id]
        end_of_turn = tokenizer(prompter.end_of_turn, add_special_tokens=False)["input_ids"]
        if len(end_of_turn) == 1 and end_of_turn[0] not in ends:
            ends.append(end_of_turn[0])
        self.end_ids = ends
        self.vocab_size = vocab_size
        key = (id(tokenizer), vocab_size, tuple(ends))
        if key not in _LL_TOKENIZERS:  # ~1 s to build: once per tokenizer (kept alive with it, so ids stay unique)
            _LL_TOKENIZERS[key] = (
                tokenizer,
                llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=ends),
            )
        self.tokenizer = _LL_TOKENIZERS[key][1]
        self.grammar = llguidance.grammar_from("lark", grammar.lark())
        self.matcher = llguidance.LLMatcher(self.tokenizer, self.grammar, log_level=0)
        if self.matcher.is_error():
            raise ValueError(f"the grammar does not compile in llguidance: {self.matcher.get_error()}")

    def processor(self, batch: int, prompt_len: int) -> Any:
        """A fresh logits processor for ``batch`` rows whose generated tokens start at ``prompt_len``."""
        matchers = [self.matcher.deep_copy() for _ in range(batch)]
        return GrammarLogitsProcessor(matchers, prompt_len, self.vocab_size, self.end_ids)


class GrammarLogitsProcessor:
    """Masks each row's scores to the tokens its matcher allows; the matcher sees only generated tokens (after
    ``prompt_len``, i.e. past the shared prefix and the left padding). Once a row's call is complete (llguidance
    stops the matcher: nothing can follow) only the end tokens are allowed; after one of them ``generate`` pads
    the row, whatever the scores say."""

    def __init__(self, matchers: list[Any], prompt_len: int, vocab_size: int, end_ids: list[int]):
        import torch

        self.matchers, self.prompt_len = matchers, prompt_len
        self.bitmask = torch.full((len(matchers), (vocab_size + 31) // 32), -1, dtype=torch.int32)
        self.bits = torch.arange(32, dtype=torch.int32)
        self.only_end = torch.zeros_like(self.bitmask[0])
        for t in end_ids:
            bit = 1 << (t % 32)
            self.only_end[t // 32] |= bit - (1 << 32) if bit >= 1 << 31 else bit  # as a signed int32

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch
        from llguidance.torch import fill_next_token_bitmask

        if input_ids.shape[1] > self.prompt_len:
            for m, token in zip(self.matchers, input_ids[:, -1].tolist(), strict=True):
                if not (m.is_stopped() or m.is_error()):
                    m.consume_token(token)
        for i, m in enumerate(self.matchers):
            if m.is_stopped() or m.is_error():
                self.bitmask[i] = self.only_end
            else:
                fill_next_token_bitmask(m, self.bitmask, i)
        allowed = ((self.bitmask.unsqueeze(-1) >> self.bits) & 1).view(len(self.matchers), -1).bool()
        width = min(scores.shape[1], allowed.shape[1])
        scores = scores.clone()
        scores[:, :width] = scores[:, :width].masked_fill(~allowed[:, :width].to(scores.device), -torch.inf)
        scores[:, width:] = -torch.inf
        return scores


class FirstStepBias:
    """Adds ``bias`` to the score of ``token`` at the first generated step only (``input_ids`` as long as the
    prompt): ``Prompter.other_bias`` lowers other()'s first token, so a request the model is unsure of is
    not taken for chatter. Later steps are untouched ("the other day" in a note keeps its odds).

    >>> import torch
    >>> FirstStepBias(token=1, bias=-2.0, prompt_len=3)(torch.zeros(2, 3), torch.zeros(2, 4)).tolist()
    [[0.0, -2.0, 0.0, 0.0], [0.0, -2.0, 0.0, 0.0]]
    >>> FirstStepBias(token=1, bias=-2.0, prompt_len=3)(torch.zeros(2, 4), torch.zeros(2, 4)).tolist()[0]
    [0.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, token: int, bias: float, prompt_len: int):
        self.token, self.bias, self.prompt_len = token, bias, prompt_len

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if input_ids.shape[1] != self.prompt_len:
            return scores
        scores = scores.clone()
        scores[:, self.token] += self.bias
        return scores


# the generated text is inside the value of ``param`` of ``skill``: 'weather(location="Os' -> ('weather', 'location')
_OPEN_VALUE = re.compile(r'\s*(\w+)\((?:\s*\w+\s*=\s*"(?:[^"\\]|\\.)*"\s*,)*\s*(\w+)\s*=\s*"(?:[^"\\]|\\.)*')
_QUOTE_TOKENS: dict[int, tuple[Any, Any]] = {}


def open_value(text: str) -> str | None:
    """``"skill.param"`` when ``text`` (a call being written) ends inside that argument's value, else None.

    >>> open_value('weather(location="Os'), open_value('notes(action="add", note="buy'), open_value('news()')
    ('weather.location', 'notes.note', None)
    >>> open_value('notes(action="add", note="a, b", '), open_value('weather(location="Oslo")')
    (None, None)
    """
    match = _OPEN_VALUE.fullmatch(text)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def quote_tokens(tokenizer: Any) -> Any:
    """The ids of every token that starts with a double quote (``"``, ``")``, ``",``: the end of an argument value),
    once per tokenizer."""
    import torch

    key = id(tokenizer)
    if key not in _QUOTE_TOKENS:  # kept with its tokenizer, so the id stays unique
        ids = [i for i in range(len(tokenizer)) if tokenizer.decode([i]).startswith('"')]
        _QUOTE_TOKENS[key] = (tokenizer, torch.tensor(ids))
    return _QUOTE_TOKENS[key][1]


def keep_only(scores: Any, row: int, ids: Any) -> None:
    """Rule out every token of ``row`` but ``ids`` (in place), unless all of those are ruled out already (by the
    grammar): then the row is left as it is."""
    import torch

    if len(ids) and torch.isfinite(scores[row, ids]).any():
        kept = scores[row, ids].clone()
        scores[row] = float("-inf")
        scores[row, ids] = kept


class CopyBias:
    """Adds ``bias`` to a row's own words while it writes the value of a ``copied`` parameter (a place, a topic:
    words the user said), and to the tokens that close the value: the value leans towards the utterance's words
    and their end, away from invented ones ("what time is it in the outer hebrides" -> not ``location="Orange"``).
    A word counts as said, lower case and capitalised, with and without a leading space; hesitations ("um", "er")
    do not count. Inside a ``location`` the place hint's spelling of the place (``places``, one per row, "" for
    none) counts as said too: "kwala lumpur" leans to ``Kuala Lumpur``. Other parameters (a duration in digits, a
    math expression, a closed set) and the call's name are untouched.
    """

    def __init__(
        self,
        tokenizer: Any,
        users: list[str],
        copied: tuple[str, ...],
        bias: float,
        prompt_len: int,
        places: list[str] | None = None,
    ):
        import torch

        self.tokenizer, self.copied, self.bias, self.prompt_len = tokenizer, set(copied), bias, prompt_len
        ends = quote_tokens(tokenizer)

        def boosted(text: str) -> Any:
            spoken = [w for w in words(text) if w not in HESITATIONS]
            forms = {f"{space}{form}" for w in spoken for form in (w, w.capitalize()) for space in ("", " ")}
            ids = {i for form in forms for i in tokenizer(form, add_special_tokens=False)["input_ids"]}
            return torch.cat([torch.tensor(sorted(ids), dtype=torch.long), ends]).unique()

        self.boosted = [boosted(user) for user in users]
        named = zip(users, places or [""] * len(users), self.boosted, strict=True)
        self.located = [boosted(f"{user} {place}") if place else own for user, place, own in named]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=True)
        values = [(i, value) for i, text in enumerate(texts) if (value := open_value(text)) in self.copied]
        if not values:
            return scores
        scores = scores.clone()
        for i, value in values:
            ids = self.located[i] if value.endswith(".location") else self.boosted[i]
            scores[i, ids.to(scores.device)] += self.bias
        return scores


_PIECES: dict[int, tuple[Any, dict[str, list[int]], int]] = {}
_VALUE_SO_FAR = re.compile(r'=\s*"((?:[^"\\]|\\.)*)$')  # the open value's text: 'notes(action="add", note="buy mi'


def token_pieces(tokenizer: Any) -> tuple[dict[str, list[int]], int]:
    """``{text, lower case: the ids of the tokens that decode to it}`` and the longest such text, once per
    tokenizer: ``" Oslo"`` and ``" oslo"`` are both under ``" oslo"``."""
    key = id(tokenizer)
    if key not in _PIECES:  # kept with its tokenizer, so the id stays unique
        pieces: dict[str, list[int]] = {}
        for i in range(len(tokenizer)):
            pieces.setdefault(tokenizer.decode([i]).lower(), []).append(i)
        _PIECES[key] = (tokenizer, pieces, max(map(len, pieces)))
    return _PIECES[key][1], _PIECES[key][2]


def continuations(tokenizer: Any, rest: str) -> set[int]:
    """The ids of the tokens that spell a start of ``rest`` (lower case, not empty), in any case: what may come
    next when the text so far is to go on as ``rest``. For ``"lin land"``: ``l``, ``L``, ``li``, ``lin``, ``Lin``,
    ``lin l`` if the vocabulary has it, and so on (:func:`token_pieces`)."""
    pieces, longest = token_pieces(tokenizer)
    return {i for n in range(1, min(len(rest), longest) + 1) for i in pieces.get(rest[:n], ())}


_WAKE = re.compile(rf"\W*(?:(?:um|uh|so|oh|hey|ok|okay)\W+)*({'|'.join(sorted(WAKE))})\b")


def wake_end(text: str) -> int:
    """Where the wake word an utterance opens with ends, 0 if it opens with none ("google" and "computer" only
    after "hey" or "ok": "google chrome please" names a program).

    >>> wake_end("alexa mouthwash on the list"), wake_end("hey google kitchen roll"), wake_end("google chrome please")
    (5, 10, 0)
    """
    if not (m := _WAKE.match(text)):
        return 0
    before = text[: m.start(1)].split()
    return (
        0 if m[1] in ("google", "computer", "assistant") and before[-1:] not in (["hey"], ["ok"], ["okay"]) else m.end()
    )


_INVOCATION = re.compile(r"\bask (?:openai|open ai|chat ?gpt|gpt|the ai|ai|the model)\b")


def invocation_end(text: str) -> int:
    """Where the last invocation phrase in ``text`` ends ("ask gpt", "ask the model"), 0 if it has none: the
    skill's name, not its content (in every train and val example with a spanned value and one of these, the value
    comes after it, however much was said before: "it's her birthday ask openai to write a limerick").

    >>> invocation_end("so ask gpt to write a poem"), invocation_end("i'll ask mum")
    (10, 0)
    """
    return max((m.end() for m in _INVOCATION.finditer(text)), default=0)


@lru_cache(maxsize=4096)
def value_starts(text: str, never: frozenset[str] = frozenset()) -> tuple[int, ...]:
    """Where in ``text`` (lower case) a spanned value may start: at a word's start, after the opening wake word and
    the last self-correction and the last invocation phrase, not at a word in ``never`` nor at a sound of hesitation
    ("er", "hmm": never part of a value). Once per utterance and parameter, not per decoding step.

    >>> value_starts("alexa ask ai why", frozenset({"ask", "ai"})), value_starts("er is it cacti")
    ((13,), (3, 6, 9))
    """
    skip = max(wake_end(text), correction_end(text), invocation_end(text))
    never = never | HESITATIONS
    return tuple(
        i
        for i, c in enumerate(text)
        if c.isalnum() and i >= skip and (i == 0 or not text[i - 1].isalnum()) and words(text[i:])[0] not in never
    )


def start_within(examples: list[tuple[str, str]], never_first: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """For each spanned parameter (the keys of ``never_first``), within how many of the places a value may start
    (:func:`value_starts`, in order) all of its values in ``examples`` (utterance, call) start: the latest place
    any of them starts at. A long question is asked whole: the 528 train prompts all start at one of the first 7
    places, so the model may not answer "uh we bought an old house ... how i can know" (its 25th place) with
    ``prompt="how i can know"``; a program named late ("we're doing a party playlist tonight so load up
    clementine") is allowed as far in as the train programs go.

    >>> start_within([("um can dogs eat grapes", 'openai(prompt="can dogs eat grapes")')] * 99
    ...              + [("i said so why", 'openai(prompt="why")')], {"openai.prompt": ("um",)})
    {'openai.prompt': 4}
    """
    seen: dict[str, list[int]] = {key: [] for key in never_first}
    for key, text, at, _ in said_values(examples, tuple(never_first)):
        if at in (starts := value_starts(text, frozenset(never_first[key]))):
            seen[key].append(starts.index(at) + 1)
    return {key: max(n) for key, n in seen.items() if n}


_POLITE_END = re.compile(r"(?:[\s,]+(?:please|thanks|thank you))+[\s.!?]*$")


def polite_end(text: str) -> int:
    """Where ``text`` ends before the "please", "thanks" or "thank you" it closes with: said to the assistant, not
    part of what is asked (in train and val 118 utterances close so, and no value of theirs ends so).

    >>> text = "hey ask openai how do i fold a fitted sheet please"
    >>> text[: polite_end(text)], polite_end("open zoom thanks"), polite_end("thank you")
    ('hey ask openai how do i fold a fitted sheet', 9, 9)
    """
    return m.start() if (m := _POLITE_END.search(text)) else len(text)


def taken_in(text: str, start: int, never: frozenset[str]) -> int:
    """Where a piece of ``text`` that starts at ``start`` must end at the latest: before the first word after it
    that is in ``never`` (and the spaces before that word), else at the end of ``text``.

    >>> text = "mullvad before i connect"
    >>> text[: taken_in(text, 0, frozenset({"before", "i"}))], text[: taken_in(text, 0, frozenset())]
    ('mullvad', 'mullvad before i connect')
    """
    for word in WORD.finditer(text, start):
        if word.start() > start and word[0] in never:
            return len(text[: word.start()].rstrip(" ,.!?;:-"))
    return len(text)


class SpanConstraint:
    """While a row writes the value of a ``spanned`` parameter (one that is a piece of the utterance in nearly every
    train row: a program's name, a note; :data:`skillcall.calls.SPANNED_SHARE`), only text that continues a piece
    of that row's utterance may come, and the closing quote only at the end of a word. The piece starts at a word's
    start after the wake word the utterance may open with (:func:`wake_end`) and after its last self-correction
    (:func:`correction_end`), and not at a word that starts none of the parameter's train values though it comes
    before many (``never_first``: :func:`skillcall.calls.never_first`, "ask", "the"): "launch the epic games
    launcher" can give ``program="epic games launcher"`` or ``"epic games"``, never an invented ``"ecosystem"``;
    only at one of the first ``start_within`` such places (:func:`start_within`);
    "alexa mouthwash on the list" never ``note="alexa mouthwash"``; "start konsole no wait yakuake" only
    ``program="yakuake"``. Letters compare case-blind. A row whose allowed tokens the grammar has all ruled out is
    left as it is.
    """

    def __init__(
        self,
        tokenizer: Any,
        users: list[str],
        spanned: tuple[str, ...],
        prompt_len: int,
        never_first: dict[str, tuple[str, ...]] | None = None,
        start_within: dict[str, int] | None = None,
        never_inside: dict[str, tuple[str, ...]] | None = None,
    ):
        self.tokenizer, self.users, self.spanned, self.prompt_len = tokenizer, users, set(spanned), prompt_len
        self.never_first = {k: frozenset(v) for k, v in (never_first or {}).items()}
        self.never_inside = {k: frozenset(v) for k, v in (never_inside or {}).items()}
        self.start_within = start_within or {}
        self.ends = quote_tokens(tokenizer).tolist()

    def allowed(self, user: str, value: str, param: str = "") -> list[int]:
        """The tokens that may come after ``value`` (the open value so far of ``param``, "skill.param") for the
        utterance ``user``, without the "please" it may close with (:func:`polite_end`)."""
        text, value = user.lower(), value.lower()
        text = text[: polite_end(text)]
        ids: set[int] = set()
        for start in value_starts(text, self.never_first.get(param, frozenset()))[: self.start_within.get(param)]:
            if not text.startswith(value, start):
                continue
            rest = text[start + len(value) : taken_in(text, start, self.never_inside.get(param, frozenset()))]
            ids |= continuations(self.tokenizer, rest)
            if value and not (rest[:1].isalnum() and value[-1].isalnum()):  # a word's end (or a mark's)
                ids.update(self.ends)
        return sorted(ids)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=True)
        for i, text in enumerate(texts):
            if (param := open_value(text)) not in self.spanned:
                continue
            value = _VALUE_SO_FAR.search(text).group(1)
            keep_only(scores, i, torch.tensor(self.allowed(self.users[i], value, param), dtype=torch.long))
        return scores


@lru_cache(maxsize=4)
def word_runs(tokenizer: Any) -> tuple[dict[tuple[str, bool], list[int]], Any]:
    """``{(the letters a token opens with, lower case; whether it is only letters): its ids}`` for the tokens that
    open with a letter (no space before it: they go on with the word before them), and all their ids, once per
    tokenizer: ``"lin"`` is under ``("lin", True)``, ``"lin's"`` under ``("lin", False)``."""
    import torch

    runs: dict[tuple[str, bool], list[int]] = {}
    for text, ids in token_pieces(tokenizer)[0].items():
        if run := re.match(r"[a-z]+", text):
            runs.setdefault((run[0], run[0] == text), []).extend(ids)
    return runs, torch.tensor(sorted(i for ids in runs.values() for i in ids))


@lru_cache(maxsize=4)
def word_starts(tokenizer: Any) -> dict[str, list[int]]:
    """``{a letter: the ids of the tokens that are a space and a word starting with it}`` (" Del", " delhi")."""
    out: dict[str, list[int]] = {}
    for text, ids in token_pieces(tokenizer)[0].items():
        if re.fullmatch(r" [a-z]+", text):
            out.setdefault(text[1], []).extend(ids)
    return out


def grown_runs(word: str, known: tuple[str, ...]) -> set[tuple[str, bool]]:
    """The ``(letters, only letters)`` keys of :func:`word_runs` a token may have that goes on with ``word``: its
    letters keep the word a prefix of a longer word in ``known`` (sorted), and a token with more than letters ends
    that longer word.

    >>> sorted(grown_runs("mel", ("melbourne", "melo", "oslo")))  # doctest: +NORMALIZE_WHITESPACE
    [('b', True), ('bo', True), ('bou', True), ('bour', True), ('bourn', True), ('bourne', False), ('bourne', True),
     ('o', False), ('o', True)]
    """
    runs = set()
    for longer in known[bisect.bisect_right(known, word) :]:
        if not longer.startswith(word):
            break
        runs.update((longer[len(word) : k], True) for k in range(len(word) + 1, len(longer) + 1))
        runs.add((longer[len(word) :], False))
    return runs


class PlaceWordGuard:
    """Inside a ``location``, a word the utterance says whole (or the place hint's) is followed as the utterance or
    the hint goes on, grown into a word of a place name, or closed: the model, writing the said "berlin" as ``Ber``
    + ``lin`` (" Berlin" is one token in the utterance), went on to ``Berlinland``, ``Berlin Germany``, "Dublin"
    to ``Dublinis``. Once the value's last word is a said word, the next token is the closing quote, one that keeps
    that word a prefix of a longer word of a place (:func:`skillcall.places.place_words`) or of a said one ("mel
    born" still becomes ``Melbourne``), text that comes after that word in the utterance or in the hint ("new"
    -> `` york``), or a word with the first letter of the word said next ("new deli" -> ``New Delhi``). A word
    that is only the start of a said one is not ended there (``Bagh Baghdad``, ``Nash Nashville``). And where the
    atlas knows the place said (a hint), the location is the hint or a piece of the utterance (:meth:`named`):
    "what time is it in Honolulu?" is no longer ``Hiloolulu``. A row whose allowed tokens the grammar has all
    ruled out is left as it is."""

    def __init__(self, tokenizer: Any, users: list[str], places: list[str], prompt_len: int):
        self.tokenizer, self.prompt_len = tokenizer, prompt_len
        self.sources = [(user.lower(), place.lower()) for user, place in zip(users, places, strict=True)]
        self.said = [set(re.findall(r"[a-z]+", f"{user} {place}")) - HESITATIONS for user, place in self.sources]
        self.runs, self.letter_led = word_runs(tokenizer)
        self.ends = quote_tokens(tokenizer).tolist()
        self.word_starts = word_starts(tokenizer)
        self.span = SpanConstraint(tokenizer, users, (), prompt_len)

    def named(self, row: int, value: str) -> list[int]:
        """The tokens that keep the location ``value`` (so far) of row ``row``, which has a place hint, the hint or a
        piece of the utterance (:meth:`SpanConstraint.allowed`): in the train and val rows with a hint, 294 of the
        298 locations are one, and the other 4 are another place than the hint's ("pittsburg": Pittsburgh, the
        atlas's Pittsburg), which the model cannot know either."""
        user, hint = self.sources[row]
        ids = set(self.span.allowed(user, value))
        if hint.startswith(value := value.lower()):
            rest = hint[len(value) :]
            ids |= continuations(self.tokenizer, rest)
            if not rest:
                ids.update(self.ends)
        return sorted(ids)

    def allowed(self, row: int, word: str) -> list[int]:
        """The tokens that may come after a value that ends with the said ``word`` (lower case) in row ``row``."""
        runs = grown_runs(word, place_words()) | grown_runs(word, tuple(sorted(self.said[row])))
        ids = {j for run in runs for j in self.runs.get(run, ())} | set(self.ends)
        for source in self.sources[row]:
            for said in re.finditer(rf"(?<![a-z]){re.escape(word)}(?![a-z])", source):
                rest = source[said.end() :]
                ids |= continuations(self.tokenizer, rest)
                if after := re.match(r" ([a-z])", rest):  # the next word, as spelt by ear: "new deli" -> " Delhi"
                    ids.update(self.word_starts.get(after[1], ()))
        return sorted(ids)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=True)
        for i, text in enumerate(texts):
            if not (param := open_value(text)) or not param.endswith(".location"):
                continue
            value = _VALUE_SO_FAR.search(text).group(1)
            if self.sources[i][1]:
                keep_only(scores, i, torch.tensor(self.named(i, value), dtype=torch.long))
            word = re.search(r"[a-z]*$", value.lower())[0]
            if word in self.said[i]:
                keep_only(scores, i, torch.tensor(self.allowed(i, word), dtype=torch.long))
            elif word and any(said.startswith(word) for said in self.said[i]):  # "Bagh" of "baghdad": not ended
                keep_only(scores, i, self.letter_led)
        return scores


RUN_ON = re.compile(r"(.{2,16}?)\1{2,}$")  # a value's end that is one piece three times over: "15/100*15/100*15/100*"


def running_on(value: str) -> bool:
    """Whether ``value`` (an open value so far) ends with the same piece of 2-16 characters, not all digits, three
    times in a row: greedy decoding that falls into such a loop never leaves it (no value in examples/ does that).

    >>> running_on("112/15/100*15/100*15/100*"), running_on("15/100*112"), running_on("1000000000")
    (True, False, False)
    """
    return bool((m := RUN_ON.search(value)) and not m[1].isdigit())


class RunOnGuard:
    """Closes a value that runs on (:func:`running_on`): only the closing quote may come next, so the call ends
    as a valid (if wrong) one instead of being cut off by ``max_new_tokens``. A row whose closing quote the grammar
    has ruled out is left as it is."""

    def __init__(self, tokenizer: Any, prompt_len: int):
        self.tokenizer, self.prompt_len, self.ends = tokenizer, prompt_len, quote_tokens(tokenizer)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=True)
        for i, text in enumerate(texts):
            if open_value(text) and running_on(_VALUE_SO_FAR.search(text).group(1)):
                keep_only(scores, i, self.ends)
        return scores


CUT_OFF = frozenset({"the", "an", "my", "your", "our", "their"})  # an article or possessive waits for its noun


def cut_off(text: str) -> bool:
    """Whether ``text`` stops at a word that cannot end a sentence (:data:`CUT_OFF`): a request cut off before
    its content, which asks for nothing: all 33 hand examples that end in one (hesitations aside: "open the uh")
    are other(), yet the model trained on those in train answered "open the" with ``runapp(program="other")``.

    >>> cut_off("hey can you open the"), cut_off("can you start up the uh"), cut_off("open the door")
    (True, True, False)
    >>> cut_off("what foods have vitamin a")
    False
    """
    said = [word for word in words(text) if word not in HESITATIONS]  # "open the uh" waits as "open the" does
    return bool(said) and said[-1] in CUT_OFF


class CutOffGuard:
    """At the first step, a row whose utterance is :func:`cut_off` may only start ``other()`` (``token``, its
    first token): "can you start the" is not ``runapp(program="start")``."""

    def __init__(self, token: int, users: list[str], prompt_len: int):
        self.token, self.prompt_len = token, prompt_len
        self.rows = [i for i, user in enumerate(users) if cut_off(user)]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if input_ids.shape[1] == self.prompt_len:
            for i in self.rows:
                keep_only(scores, i, torch.tensor([self.token]))
        return scores


def prefill(model: Any, ids: list[int]) -> Any:
    """The KV cache of ``ids`` (batch 1): computed once, reused by every batch that starts with them."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        model(input_ids=torch.tensor([ids], device=model.device), cache=cache, use_cache=True)
    return cache


def generate_batch(
    model: Any,
    prompter: Prompter,
    prompts: list[list[int]],
    prefix_len: int,
    cache: Any,
    max_new_tokens: int,
    constraint: Constraint | None = None,
    bias: tuple[int, float] | None = None,
    users: list[str] | None = None,
    places: list[str] | None = None,
) -> list[str]:
    """Greedy answers for one batch of tokenised prompts, each stopped at the end of the turn or a newline.

    The first ``prefix_len`` tokens (shared by every prompt) come from ``cache``; the rest is padded
    on its left, so a row reads ``[prefix][pad ...][own tokens]``. Position ids follow the attention
    mask (transformers derives them from it), so padding does not shift any token's position.
    With ``prefix_len == 0`` this is plain left padding. ``constraint``: only calls of its grammar come out.
    ``bias``: (token, logit offset) applied at the first step (:class:`FirstStepBias`), e.g. other()'s lowered.
    ``users``: the prompts' utterances, for the prompter's copy bias (:class:`CopyBias`); None = no copy bias;
    ``places``: their place hints' names (:meth:`Prompter.place`).
    """
    import copy

    import torch
    from transformers import LogitsProcessorList

    tokenizer = prompter.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prefix, width = prompts[0][:prefix_len], max(len(p) for p in prompts) - prefix_len
    rows, mask = [], []
    for p in prompts:
        own = p[prefix_len:]
        rows.append(prefix + [pad] * (width - len(own)) + own)
        mask.append([1] * prefix_len + [0] * (width - len(own)) + [1] * len(own))
    input_ids = torch.tensor(rows, device=model.device)
    kwargs = {}
    if prefix_len:
        kwargs["cache"] = copy.deepcopy(cache)
        kwargs["cache"].batch_repeat_interleave(len(prompts))
    stops = [s for s in (prompter.end_of_turn, tokenizer.eos_token, "\n") if s]
    processors = LogitsProcessorList()
    if bias is not None:
        processors.append(FirstStepBias(*bias, input_ids.shape[1]))
    if users is not None and prompter.copy_bias and prompter.copied:
        processors.append(CopyBias(tokenizer, users, prompter.copied, prompter.copy_bias, input_ids.shape[1], places))
    if constraint is not None:
        processors.append(constraint.processor(len(prompts), input_ids.shape[1]))
    if users is not None and prompter.spanned:  # after the grammar: it never leaves a row without a token
        processors.append(
            SpanConstraint(
                tokenizer,
                users,
                prompter.spanned,
                input_ids.shape[1],
                prompter.never_first,
                prompter.start_within,
                prompter.never_inside,
            )
        )
    if users is not None:
        processors.append(PlaceWordGuard(tokenizer, users, places or [""] * len(users), input_ids.shape[1]))
        processors.append(CutOffGuard(prompter.answer_start_token(f"{OTHER}()"), users, input_ids.shape[1]))
    processors.append(RunOnGuard(tokenizer, input_ids.shape[1]))
    with torch.inference_mode():
        ids = model.generate(
            input_ids=input_ids,
            attention_mask=torch.tensor(mask, device=model.device),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            stopping_criteria=stopping_criteria(tokenizer, input_ids.shape[1], stops),
            logits_processor=processors,
            **kwargs,
        )
    texts = tokenizer.batch_decode(ids[:, input_ids.shape[1] :])
    return [prompter.answer_from(t.split(tokenizer.eos_token)[0]) for t in texts]


def generate(
    model: Any,
    prompter: Prompter,
    users: list[str],
    batch_size: int,
    max_new_tokens: int,
    share_prefix: bool = True,
    progress: str | None = None,
    grammar: Grammar | None = None,
) -> list[Generation]:
    """Greedy answers for ``users``, in input order.

    Batches group prompts of similar length (little padding). With ``share_prefix`` the tokens every
    prompt starts with (the system prompt: ~90% of a prompt here) are run through the model once
    and their KV cache is reused by every batch. ``batch_size=1, share_prefix=False`` is the
    unbatched reference: one plain ``generate`` call per utterance. ``progress``: a label for a progress
    bar on stderr (utterances done), None for none. ``grammar``: constrained decoding, every answer is a
    sentence of it (unless cut by ``max_new_tokens``).
    """
    tokenizer = prompter.tokenizer
    began = time.perf_counter()
    constraint = Constraint(grammar, prompter, model.config.vocab_size) if grammar is not None else None
    bias = (prompter.answer_start_token(f"{OTHER}()"), -prompter.other_bias) if prompter.other_bias else None
    prompts = [tokenizer(prompter.prompt(u), add_special_tokens=False)["input_ids"] for u in users]
    prefix_len = common_prefix_len(prompts) if share_prefix and prompts else 0
    cache = prefill(model, prompts[0][:prefix_len]) if prefix_len else None
    shared_ms = (time.perf_counter() - began) * 1000 / max(len(users), 1)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[Generation | None] = [None] * len(users)
    bar = tqdm(total=len(users), desc=progress, unit="utt", disable=progress is None, file=sys.stderr, mininterval=2)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        began = time.perf_counter()
        texts = generate_batch(
            model,
            prompter,
            [prompts[i] for i in chunk],
            prefix_len,
            cache,
            max_new_tokens,
            constraint,
            bias,
            [users[i] for i in chunk],
            [prompter.place(users[i]) for i in chunk],
        )
        latency_ms = shared_ms + (time.perf_counter() - began) * 1000 / len(chunk)
        for i, text in zip(chunk, texts, strict=True):
            out[i] = Generation(text, latency_ms)
        bar.update(len(chunk))
    bar.close()
    return out  # type: ignore[return-value]
