"""Constrained decoding in the generation engine: with the skills' grammar every answer of the tiny random model is
a valid call, the same whether batched with the shared prefix and left padding or one by one."""

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
