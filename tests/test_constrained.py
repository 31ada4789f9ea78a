"""Constrained decoding in the generation engine: with the skills' grammar every answer of the tiny random model is
a valid call, the same whether batched with the shared prefix and left padding or one by one."""

from pathlib import Path

import pytest
from tiny_adapter import SKILLS, TINY_TEST

from skillcall.calls import validate
from skillcall.grammar import skills_grammar

USERS = [u for u, _, _ in TINY_TEST] + ["x", "what is the weather going to be like in San Francisco tomorrow"]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from skillcall.prompting import Prompter, render_system_prompt

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return model, Prompter("chat", render_system_prompt(SKILLS, "Skills:\n{skills}"), tokenizer)


@pytest.mark.slow
def test_every_constrained_answer_is_a_call_batched_or_not(tiny):
    from skillcall.generation import generate

    model, prompter = tiny
    grammar = skills_grammar(SKILLS)
    free = [g.text for g in generate(model, prompter, USERS, 4, 12)]
    batched = [g.text for g in generate(model, prompter, USERS, 4, 24, grammar=grammar)]
    single = [g.text for g in generate(model, prompter, USERS, 1, 24, share_prefix=False, grammar=grammar)]
    assert not any(grammar.accepts(t) for t in free)  # the random model writes no calls on its own
    assert all(grammar.accepts(t) for t in batched), batched
    assert [str(validate(t, SKILLS)) for t in batched] == batched  # canonical
    assert batched == single


@pytest.mark.slow
def test_the_constraint_forces_the_end_token_once_the_call_is_complete(tiny):
    import torch

    from skillcall.generation import Constraint

    model, prompter = tiny
    constraint = Constraint(skills_grammar(SKILLS), prompter, model.config.vocab_size)
    tok = prompter.tokenizer
    ids = tok("other()", add_special_tokens=False)["input_ids"]
    prompt = [[0, 1, 2]]
    processor = constraint.processor(1, len(prompt[0]))
    scores = torch.zeros(1, model.config.vocab_size)
    first = processor(torch.tensor(prompt), scores.clone())
    assert torch.isfinite(first[0, ids[0]]) and not torch.isfinite(first[0, tok.eos_token_id])
    seen = prompt[0][:]
    for t in ids:
        allowed = processor(torch.tensor([seen]), scores.clone())
        assert torch.isfinite(allowed[0, t])
        seen.append(t)
    last = processor(torch.tensor([seen]), scores.clone())
    assert torch.isfinite(last[0]).nonzero().ravel().tolist() == sorted(constraint.end_ids)


@pytest.mark.slow
def test_a_negative_other_bias_makes_every_answer_other_and_zero_changes_nothing(tiny):
    """The random model picks skills by chance; raising other()'s first token by 1e4 decides every answer.
    (Lowering it is tested on a trained adapter in test_predict.py: the random model also spells "ot"+"her".)"""
    from dataclasses import replace

    from skillcall.generation import generate

    model, prompter = tiny
    grammar = skills_grammar(SKILLS)

    def answers(bias: float) -> list[str]:
        return [g.text for g in generate(model, replace(prompter, other_bias=bias), USERS, 4, 24, grammar=grammar)]

    raised, zero = answers(-1e4), answers(0.0)
    assert raised == ["other()"] * len(USERS)
    assert zero == [g.text for g in generate(model, prompter, USERS, 4, 24, grammar=grammar)]
    assert zero != raised  # the random model does not answer other() to everything by itself


def test_copy_bias_raises_the_utterances_words_only_inside_a_copied_value(tiny):
    import torch

    from skillcall.generation import CopyBias, quote_tokens

    model, prompter = tiny
    tok = prompter.tokenizer
    users = ["weather in um san francisco please", "weather in um san francisco please"]
    bias = CopyBias(tok, users, ("weather.location",), 3.0, prompt_len=2)
    prompt = [[0, 1], [0, 1]]
    said = {i for w in ("san", " San", " francisco", " Francisco", " please") for i in tok(w)["input_ids"]}

    def raised(*answers: str) -> list[set[int]]:
        ids = [p + tok(a, add_special_tokens=False)["input_ids"] for p, a in zip(prompt, answers, strict=True)]
        width = max(map(len, ids))
        ids = [[0] * (width - len(row)) + row for row in ids]  # as generate pads (here: before the prompt)
        scores = bias(torch.tensor(ids), torch.zeros(len(ids), model.config.vocab_size))
        assert set(scores.unique().tolist()) <= {0.0, 3.0}
        return [set((row == 3.0).nonzero().ravel().tolist()) for row in scores]

    inside, outside = raised('weather(location="San', "weather(")
    assert said <= inside and set(quote_tokens(tok).tolist()) <= inside and outside == set()
    assert tok(" tomorrow")["input_ids"][0] not in inside  # a word the user did not say
    assert tok(" um")["input_ids"][0] not in inside  # a hesitation the user did say
    assert raised('timer(duration="', 'weather(location="Oslo")') == [set(), set()]  # not copied; closed


def test_copy_bias_raises_the_place_hints_spelling_only_inside_a_location(tiny):
    import torch

    from skillcall.generation import CopyBias

    model, prompter = tiny
    tok = prompter.tokenizer
    users = ["news about oslo"] * 2  # a place hint that is no word of the utterance: its tokens are all new
    bias = CopyBias(tok, users, ("weather.location", "news.topic"), 3.0, prompt_len=0, places=["Kuala Lumpur"] * 2)
    answers = ['weather(location="', 'news(topic="']
    width = max(len(tok(a)["input_ids"]) for a in answers)
    ids = [[0] * (width - len(tok(a)["input_ids"])) + tok(a)["input_ids"] for a in answers]
    location, topic = ((row == 3.0) for row in bias(torch.tensor(ids), torch.zeros(2, model.config.vocab_size)))
    hinted = tok(" Kuala Lumpur")["input_ids"] + tok("Kuala")["input_ids"]
    assert all(location[i] for i in hinted) and not any(topic[i] for i in hinted)
    assert all(location[i] and topic[i] for i in tok(" oslo")["input_ids"])  # the words said: in both


def test_span_constraint_allows_only_a_piece_of_the_utterance_from_a_words_start(smollm2_tokenizer):
    from skillcall.generation import SpanConstraint, quote_tokens

    tok = smollm2_tokenizer
    span = SpanConstraint(tok, [], ("runapp.program",), prompt_len=0)
    user = "Launch the Epic Games launcher"

    def texts(value: str) -> set[str]:
        return {tok.decode([i]) for i in span.allowed(user, value)}

    ends = {tok.decode([i]) for i in quote_tokens(tok).tolist()}
    first = texts("")
    assert {"E", "e", "ep", "g", "game", "Game", "games", "launch", "th"} <= first  # any word's start, any case
    assert not first & ({"pic", " epic", "eco", "ame"} | ends)  # not inside a word, not empty
    assert {" game", " Games", " games"} <= texts("epic") and ends <= texts("epic")  # on, or closed at a word's end
    assert texts("epic g") == {"a", "am", "ame", "ames", "A", "Am", "AM"} and not texts("epic g") & ends
    assert texts("epic games launcher") == ends
    assert texts("ecosystem") == set()  # no piece of the utterance: nothing (the caller then leaves the row alone)


def test_a_spanned_value_never_starts_at_the_wake_word_the_utterance_opens_with(smollm2_tokenizer):
    from skillcall.generation import SpanConstraint

    tok = smollm2_tokenizer
    span = SpanConstraint(tok, [], ("notes.note",), prompt_len=0)

    def first(user: str) -> set[str]:
        return {tok.decode([i]) for i in span.allowed(user, "")}

    assert not first("alexa mouthwash on the list") & {"a", "al", "alex", "alexa"}
    assert {"m", "mouth"} <= first("alexa mouthwash on the list")
    assert not first("um hey google kitchen roll on the list") & {"h", "hey", "g", "google", "um"}
    assert {"google", "g"} <= first("google chrome please")  # no "hey" or "ok": a program's name, kept
    assert {"al", "a"} <= first("ask alexa to add milk")  # not where the utterance opens


def shipped_spanned_values() -> list[tuple[str, str]]:
    """(utterance in lower case, value) for every value of a spanned parameter the shipped hand examples say."""
    from skillcall.calls import SPANNED_SHARE, copied_params, parse_call, verbatim
    from skillcall.examples import read_examples_dir

    skills, files = read_examples_dir(Path(__file__).parent.parent / "examples")
    pairs = [(pair.user, pair.answer) for f in files for pair in f.pairs]
    spanned = copied_params(pairs, skills, SPANNED_SHARE, verbatim)
    return [
        (text, value.lower())
        for user, answer in pairs
        for call, text in [(parse_call(answer), user.lower())]
        for name, value in call.args
        if f"{call.name}.{name}" in spanned and value.lower() in text
    ]


@pytest.mark.parametrize("marker, least", [("correction_end", 20), ("invocation_end", 40)])
def test_every_spanned_value_of_the_shipped_examples_comes_after_the_marker_said_before_it(marker: str, least: int):
    """The span constraint starts a value after the last "no wait" / "i mean" / "scratch that" and after the last
    "ask gpt" / "ask openai": the examples that say one all give the value after it (and there are some)."""
    from skillcall import generation

    said = [
        (text, value, text.find(value, end) >= end)
        for text, value in shipped_spanned_values()
        if (end := getattr(generation, marker)(text))
    ]
    assert len(said) >= least and all(after for *_, after in said), [c for c in said if not c[2]]


def test_no_spanned_value_of_the_shipped_examples_takes_in_the_please_its_utterance_closes_with():
    """The span constraint ends a piece before a closing "please" / "thanks" / "thank you" (``polite_end``): the
    examples that close so (many) never put it in a value."""
    from skillcall.generation import polite_end

    said = [
        (text, value, text.rfind(value) + len(value) <= polite_end(text))
        for text, value in shipped_spanned_values()
        if polite_end(text) < len(text)
    ]
    assert len(said) >= 30 and all(before for *_, before in said), [c for c in said if not c[2]]


def test_a_spanned_value_stops_before_the_please_said_last(smollm2_tokenizer):
    from skillcall.generation import SpanConstraint, quote_tokens

    tok = smollm2_tokenizer
    span = SpanConstraint(tok, [], ("openai.prompt",), prompt_len=0)
    user = "ask gpt how do i fold a fitted sheet please"
    closing = set(quote_tokens(tok).tolist())
    assert set(span.allowed(user, "how do i fold a fitted sheet", "openai.prompt")) == closing  # only the quote
    assert " please" in {tok.decode([i]) for i in span.allowed("say please to grandma", "say", "openai.prompt")}


def test_a_spanned_value_starts_after_an_invocation_phrase_said_midway(smollm2_tokenizer):
    from skillcall.generation import SpanConstraint

    tok = smollm2_tokenizer
    span = SpanConstraint(tok, [], ("openai.prompt",), prompt_len=0)
    first = {tok.decode([i]) for i in span.allowed("it's her birthday ask openai to write a limerick", "")}
    assert {"write", "w", "to"} <= first and not first & {"it", "her", "birthday", "ask", "open"}


def test_a_spanned_value_never_starts_at_a_word_that_starts_none_of_its_train_values(smollm2_tokenizer):
    from skillcall.generation import SpanConstraint

    tok = smollm2_tokenizer
    never = {"openai.prompt": ("ai", "ask"), "story.description": ("a", "about", "the")}
    span = SpanConstraint(tok, [], ("openai.prompt", "story.description"), prompt_len=0, never_first=never)

    def first(user: str, param: str) -> set[str]:
        return {tok.decode([i]) for i in span.allowed(user, "", param)}

    assert not first("ask ai can dogs eat grapes", "openai.prompt") & {"a", "as", "ask", "ai"}
    assert {"can", "c", "dogs", "gra"} <= first("ask ai can dogs eat grapes", "openai.prompt")
    assert {"ask", "ai"} <= first("ai ask can dogs eat grapes", "runapp.program")  # another parameter's words
    story = "a story about the um the boy who cried wolf"
    assert not first(story, "story.description") & {"a", "about", "the", "th", "ab"}
    assert {"boy", "story", "c"} <= first(story, "story.description")
    assert "um" not in first(story, "story.description")  # a sound of hesitation starts no value, never given or not
    assert " the" in {tok.decode([i]) for i in span.allowed(story, "story about", "story.description")}  # inside


def test_a_spanned_value_starts_only_within_its_first_places(smollm2_tokenizer):
    from skillcall.generation import SpanConstraint

    tok = smollm2_tokenizer
    user = "uh we bought an old house and the walls are damp how can i fix it"
    span = SpanConstraint(tok, [], ("openai.prompt",), prompt_len=0, never_first={}, start_within={"openai.prompt": 2})
    first = {tok.decode([i]) for i in span.allowed(user, "", "openai.prompt")}
    assert {"we", "bought"} <= first and not first & {"uh", "how", "ho", "old", "fix"}  # "uh" is no place to start
    assert " bought" in {tok.decode([i]) for i in span.allowed(user, "we", "openai.prompt")}  # inside: any word
    unlimited = SpanConstraint(tok, [], ("openai.prompt",), prompt_len=0)
    assert "how" in {tok.decode([i]) for i in unlimited.allowed(user, "", "openai.prompt")}


def test_a_spanned_value_takes_in_no_word_its_train_values_never_hold(smollm2_tokenizer):
    """The val row "alexa we've run out of descaler stick it on the shopping list" came out as
    ``note="descaler stick it"``: "stick" comes after 3+ train notes and is in no spanned train value, so a note
    ends before it; a word any value holds ("it") is not such a word."""
    from skillcall.generation import SpanConstraint, quote_tokens

    tok = smollm2_tokenizer
    user = "alexa we've run out of descaler stick it on the shopping list"
    inside = {"notes.note": ("stick",)}
    span = SpanConstraint(tok, [], ("notes.note",), prompt_len=0, never_inside=inside)
    after = {tok.decode([i]) for i in span.allowed(user, "descaler", "notes.note")}
    assert after == {tok.decode([i]) for i in quote_tokens(tok).tolist()}  # only the end: not " stick", not " "
    assert " stick" in {tok.decode([i]) for i in SpanConstraint(tok, [], ("notes.note",), 0).allowed(user, "descaler")}
    assert " it" in {tok.decode([i]) for i in span.allowed("add pick it up to my list", "pick", "notes.note")}


def test_never_inside_on_the_shipped_examples_forbids_none_of_their_values():
    """Learned from the hand examples: no spanned value of theirs holds a word it forbids, and it forbids a few."""
    from skillcall.calls import SPANNED_SHARE, copied_params, never_inside, said_values, verbatim
    from skillcall.examples import read_examples_dir
    from skillcall.generation import taken_in

    skills, files = read_examples_dir(Path(__file__).parent.parent / "examples")
    pairs = [(pair.user, pair.answer) for f in files for pair in f.pairs]
    spanned = copied_params(pairs, skills, SPANNED_SHARE, verbatim)
    inside = never_inside(pairs, spanned)
    assert 0 < sum(map(len, inside.values())) < 40 and "stick" in inside["notes.note"], inside
    assert "it" not in inside["notes.note"]  # "stick it on the list", but "get it fixed" is a note of its own
    cut = [
        v
        for key, text, at, v in said_values(pairs, spanned)
        if at >= 0 and taken_in(text, at, frozenset(inside[key])) < at + len(v)
    ]
    assert not cut, cut


def test_start_within_on_the_shipped_examples_keeps_their_own_values_and_is_small():
    """Learned from the hand examples, the limit lets every one of their own values start where it does and is a
    handful of places, not the whole utterance."""
    from skillcall.calls import SPANNED_SHARE, copied_params, never_first, parse_call, verbatim
    from skillcall.examples import read_examples_dir
    from skillcall.generation import start_within, value_starts

    skills, files = read_examples_dir(Path(__file__).parent.parent / "examples")
    pairs = [(pair.user, pair.answer) for f in files for pair in f.pairs]
    spanned = copied_params(pairs, skills, SPANNED_SHARE, verbatim)
    never = never_first(pairs, spanned)
    limits = start_within(pairs, never)
    assert set(limits) == set(spanned) and all(2 <= n <= 20 for n in limits.values()), limits
    for key, limit in limits.items():
        skill, param = key.split(".")
        places = []
        for user, answer in pairs:
            call, text = parse_call(answer), user.lower()
            value = dict(call.args).get(param, "").lower() if call.name == skill else ""
            starts = value_starts(text, frozenset(never[key]))
            if value and text.find(value) in starts:
                places.append(starts.index(text.find(value)))
        assert len(places) > 100 and max(places) == limit - 1, key


def test_span_constraint_masks_only_rows_inside_a_spanned_value(tiny):
    import torch

    from skillcall.generation import SpanConstraint

    model, prompter = tiny
    tok = prompter.tokenizer
    users = ["open the tor browser", "open the tor browser", "open the tor browser"]
    answers = ['runapp(program="tor', 'news(topic="tor', "runapp("]
    span = SpanConstraint(tok, users, ("runapp.program",), prompt_len=0)
    width = max(len(tok(a)["input_ids"]) for a in answers)
    ids = torch.tensor([[0] * (width - len(tok(a)["input_ids"])) + tok(a)["input_ids"] for a in answers])
    scores = span(ids, torch.zeros(3, model.config.vocab_size))
    kept = set(torch.isfinite(scores[0]).nonzero().ravel().tolist())
    assert kept == set(span.allowed(users[0], "tor")) and tok(" browser")["input_ids"][0] in kept
    assert torch.isfinite(scores[1:]).all()  # a value that is not spanned, no value open: untouched
    masked = torch.zeros(3, model.config.vocab_size)
    masked[0, sorted(kept)] = float("-inf")  # the grammar ruled out every allowed token: the row is left alone
    assert torch.equal(span(ids, masked.clone())[0], masked[0])


def test_a_value_that_runs_on_can_only_close(tiny):
    """The eval's looping answer "112/15/100*15/100*15/100*15/100*..." (cut off by max_new_tokens: invalid) is
    closed after three turns; a value that merely repeats digits, or no loop at all, is left alone."""
    import torch

    from skillcall.generation import RunOnGuard, quote_tokens

    model, prompter = tiny
    tok = prompter.tokenizer
    answers = ['timer(duration="1/5*5*5*', 'timer(duration="1000000000', 'timer(duration="15/100*112', "timer(dura"]
    width = max(len(tok(a)["input_ids"]) for a in answers)
    ids = torch.tensor([[0] * (width - len(tok(a)["input_ids"])) + tok(a)["input_ids"] for a in answers])
    scores = RunOnGuard(tok, prompt_len=0)(ids, torch.zeros(4, model.config.vocab_size))
    assert set(torch.isfinite(scores[0]).nonzero().ravel().tolist()) == set(quote_tokens(tok).tolist())
    assert torch.isfinite(scores[1:]).all()
    masked = torch.zeros(1, model.config.vocab_size)
    masked[0, quote_tokens(tok)] = float("-inf")  # the grammar ruled out the quote: the row is left alone
    assert torch.equal(RunOnGuard(tok, prompt_len=0)(ids[:1], masked.clone()), masked)


def test_every_shipped_example_that_stops_at_an_article_or_possessive_is_other():
    """The cut-off guard's premise, on the shipped hand examples: what ends in "the", "my" ... asks for nothing."""
    from skillcall.calls import parse_call
    from skillcall.examples import read_examples_dir
    from skillcall.generation import cut_off

    _, files = read_examples_dir(Path(__file__).parent.parent / "examples")
    cut = [(pair.user, parse_call(pair.answer).name) for f in files for pair in f.pairs if cut_off(pair.user)]
    assert len(cut) >= 10 and all(name == "other" for _, name in cut), [c for c in cut if c[1] != "other"]


def test_an_utterance_cut_off_after_an_article_may_only_start_other(tiny):
    """At the first step "can you start the" may only begin other(); "start the timer app" and a later step are
    untouched, and a row whose other() the grammar ruled out is left alone."""
    import torch

    from skillcall.generation import CutOffGuard

    model, prompter = tiny
    other = prompter.answer_start_token("other()")
    guard = CutOffGuard(other, ["can you start the", "start the timer app", "open my"], prompt_len=2)
    scores = guard(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, model.config.vocab_size))
    assert (
        torch.isfinite(scores[0]).nonzero().ravel().tolist()
        == [other]
        == torch.isfinite(scores[2]).nonzero().ravel().tolist()
    )
    assert torch.isfinite(scores[1]).all()
    assert torch.isfinite(guard(torch.zeros(3, 3, dtype=torch.long), torch.zeros(3, model.config.vocab_size))).all()
    masked = torch.zeros(3, model.config.vocab_size)
    masked[0, other] = float("-inf")
    assert torch.equal(guard(torch.zeros(3, 2, dtype=torch.long), masked.clone())[0], masked[0])


def test_a_said_word_in_a_location_is_closed_grown_into_a_place_or_followed_as_said(smollm2_tokenizer):
    """The trained model wrote "what's the weather like in Berlin" as ``location="Berlinland"`` (and, with that
    forbidden, ``"Berlin Germany"``): once the value's last word is one the utterance says, it is closed, grown
    into a place's word, or followed as the utterance goes on; other values and other words are free."""
    import torch

    from skillcall.generation import PlaceWordGuard

    tok = smollm2_tokenizer
    users = [
        "what's the weather like in berlin",
        "is it cold in mel born",
        "what time is it in new deli",
        "berlin news",
    ]
    answers = ['weather(location="Berlin', 'weather(location="Mel', 'timecheck(location="New', 'news(topic="Berlin']
    width = max(len(tok(a)["input_ids"]) for a in answers)
    ids = torch.tensor([[0] * (width - len(tok(a)["input_ids"])) + tok(a)["input_ids"] for a in answers])
    guard = PlaceWordGuard(tok, users, ["Berlin", "", "", ""], prompt_len=0)
    scores = guard(ids, torch.zeros(len(users), len(tok)))

    def free(row: int, text: str) -> bool:
        return bool(torch.isfinite(scores[row, tok(text, add_special_tokens=False)["input_ids"][0]]))

    assert free(0, '")') and not any(free(0, t) for t in ("land", "is", "ische", " Germany", " Berlin", ")"))
    assert free(1, '")') and free(1, "bourne") and free(1, " born") and not free(1, "land") and not free(1, " Town")
    assert free(2, " Delhi") and free(2, " deli") and not free(2, " York")  # the next word said starts with "d"
    assert torch.isfinite(scores[3]).all()  # not a location: untouched
    assert torch.isfinite(guard(ids[:1], torch.zeros(1, len(tok)))).sum() < 1000  # a handful of tokens, not all
    only_land = torch.full((1, len(tok)), float("-inf"))  # the grammar left only a forbidden token: left as it is
    only_land[0, tok("land", add_special_tokens=False)["input_ids"][0]] = 0.0
    assert torch.equal(guard(ids[:1], only_land.clone()), only_land)


def test_the_place_word_guard_allows_every_location_of_the_shipped_examples(smollm2_tokenizer):
    """Teacher-forced through the guard, every ``location`` of the hand examples (ASR spellings the label corrects
    included: "mont real" -> Montreal, "ho chi min city" -> Ho Chi Minh City) is written token by token."""
    import torch

    from skillcall.calls import parse_call
    from skillcall.examples import read_examples_dir
    from skillcall.generation import PlaceWordGuard
    from skillcall.places import place

    _, files = read_examples_dir(Path(__file__).parent.parent / "examples")
    located = [(p.user, p.answer) for f in files for p in f.pairs if dict(parse_call(p.answer).args).get("location")]
    assert len(located) > 300
    blocked = []
    for user, answer in located:
        ids = smollm2_tokenizer(answer, add_special_tokens=False)["input_ids"]
        guard = PlaceWordGuard(smollm2_tokenizer, [user], [place(user) or ""], prompt_len=0)
        for k in range(1, len(ids)):
            scores = guard(torch.tensor([ids[:k]]), torch.zeros(1, len(smollm2_tokenizer)))
            if not torch.isfinite(scores[0, ids[k]]):
                blocked.append((user, answer, smollm2_tokenizer.decode(ids[:k])))

    # the hint names another place than the label, which corrects the heard spelling further ("pittsburg": the
    # atlas's Pittsburg, the label's Pittsburgh): a location with a hint is the hint or a piece of the utterance
    def another(user: str, answer: str) -> bool:
        return bool(place(user)) and place(user) != dict(parse_call(answer).args)["location"]

    assert all(another(user, answer) for user, answer, _ in blocked) and len(blocked) <= 8, blocked


def test_a_location_with_a_place_hint_is_the_hint_or_a_piece_of_the_utterance(smollm2_tokenizer):
    """The trained model wrote "Excuse me, what time is it in Honolulu?" as ``location="Hiloolulu"``: with the
    atlas's hint, a location may only spell the hint or a piece of the utterance; without one it is free."""
    import torch

    from skillcall.generation import PlaceWordGuard

    tok = smollm2_tokenizer
    user = "Excuse me, what time is it in Honolulu?"
    guard = PlaceWordGuard(tok, [user, user], ["Honolulu", ""], prompt_len=0)

    def scores(value: str) -> torch.Tensor:
        ids = torch.tensor([tok(f'timecheck(location="{value}', add_special_tokens=False)["input_ids"]] * 2)
        return guard(ids, torch.zeros(2, len(tok)))

    def free(value: str) -> set[str]:
        return {tok.decode([j]) for j in torch.isfinite(scores(value)[0]).nonzero().flatten().tolist()}

    assert {"Hon", "H", "time", "Ex"} <= free("") and not free("") & {"Hil", "Ber", "Berlin", " Hon"}
    assert "ilo" not in free("H") and {"on", "o"} <= free("H")
    assert '")' in free("Honolulu") and "olulu" not in free("Honolulu")
    assert torch.isfinite(scores("")[1]).all()  # no hint: untouched at a value's start


@pytest.mark.slow
def test_the_span_constraint_makes_the_random_model_write_a_piece_of_the_utterance(tiny):
    """Greedy decoding by the random model from inside a program value: without the constraint it writes text
    the user never said; with it, the value is a piece of the utterance."""
    import torch
    from transformers import LogitsProcessorList

    from skillcall.generation import SpanConstraint

    model, prompter = tiny
    tok = prompter.tokenizer
    users, free_values = ["open the tor browser please", "can you launch libreoffice calc", "start gimp"], []
    for user in users:
        head = tok(prompter.prompt(user), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([head + tok('runapp(program="', add_special_tokens=False)["input_ids"]])
        span = SpanConstraint(tok, [user], ("runapp.program",), prompt_len=len(head))
        free = model.generate(ids, max_new_tokens=8, do_sample=False)
        held = model.generate(ids, max_new_tokens=8, do_sample=False, logits_processor=LogitsProcessorList([span]))
        free_values.append(tok.decode(free[0, ids.shape[1] :]).split('"')[0])
        value = tok.decode(held[0, ids.shape[1] :]).split('"')[0]
        assert value and value.lower() in user.lower(), value
    assert any(v.lower() not in user.lower() for v, user in zip(free_values, users, strict=True)), free_values


@pytest.mark.slow
def test_a_large_copy_bias_makes_the_value_tokens_of_the_utterance(tiny):
    """Greedy decoding by the random model from inside a location value: without the bias it writes tokens the
    user never said; with the copy bias at 1e4 every token is one of the utterance's words (or a closing quote)."""
    import torch
    from transformers import LogitsProcessorList

    from skillcall.generation import CopyBias

    model, prompter = tiny
    tok = prompter.tokenizer

    def value_tokens(user: str, copy_bias: float) -> tuple[set[int], set[int]]:
        prompt = tok(prompter.prompt(user), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + tok('weather(location="', add_special_tokens=False)["input_ids"]])
        copy = CopyBias(tok, [user], ("weather.location",), copy_bias, prompt_len=len(prompt))
        out = model.generate(ids, max_new_tokens=6, do_sample=False, logits_processor=LogitsProcessorList([copy]))
        return set(out[0, ids.shape[1] :].tolist()), set(copy.boosted[0].tolist())

    for user in ["weather in san francisco please", "how cold is it in oslo today", "rain in lisbon"]:
        free, said = value_tokens(user, 0.0)
        copied, _ = value_tokens(user, 1e4)
        assert not free <= said and copied <= said, (user, tok.decode(list(free)), tok.decode(list(copied)))
