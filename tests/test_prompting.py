import json
from dataclasses import replace
from pathlib import Path

import pytest

from skillcall.examples import load_skills
from skillcall.prompting import Prompter, PromptError, PromptParams, render_system_prompt, short_description
from skillcall.skills import parse_signature

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def chat(tiny_data, smollm2_tokenizer) -> Prompter:
    return Prompter.build(PromptParams("chat", str(ROOT / "prompts/system.txt")), tiny_data.skills, smollm2_tokenizer)


def test_system_prompt_lists_every_signature_with_a_short_description(tiny_data):
    text = render_system_prompt(tiny_data.skills, "Skills:\n{skills}\nReply with the call only.")
    lines = text.splitlines()
    for skill in tiny_data.skills.values():
        (line,) = [x for x in lines if x.startswith(skill.signature)]
        assert line == f"{skill.signature}: {short_description(skill.description)}"
    assert "{skills}" not in text
    assert 'weather(location="[location]"): ask for the weather at a location.' in lines
    assert 'timer(duration="[duration]"): set a timer.' in lines


def test_shipped_system_prompt_names_every_skill_once(tiny_data):
    text = render_system_prompt(tiny_data.skills, (ROOT / "prompts/system.txt").read_text())
    assert "{" not in text and "(" not in text  # names, no signatures
    named = text.split(": ", 1)[1].split(". ")[0].split(", ")
    assert sorted(named) == sorted(tiny_data.skills)


@pytest.mark.parametrize("template", ["no placeholder", "{skills} and {names}", "{names} {names}"])
def test_system_prompt_template_needs_one_placeholder(tiny_data, template):
    with pytest.raises(PromptError, match="exactly one placeholder"):
        render_system_prompt(tiny_data.skills, template)


def test_real_skills_system_prompt_is_short(smollm2_tokenizer):
    skills = load_skills(ROOT / "examples")
    text = render_system_prompt(skills, (ROOT / "prompts/system.txt").read_text())
    assert len(skills) == 10 and len(smollm2_tokenizer(text)["input_ids"]) < 5 * len(skills)


def test_chat_prompt_plus_completion_is_the_full_conversation(chat, smollm2_tokenizer):
    user, answer = "weather in Paris", 'weather(location="Paris")'
    full = smollm2_tokenizer.apply_chat_template(
        [
            {"role": "system", "content": chat.system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ],
        tokenize=False,
    )
    assert chat.prompt(user) + chat.completion(answer) == full
    assert chat.prompt(user).endswith("<|im_start|>assistant\n")
    assert chat.completion(answer) == answer + "<|im_end|>\n"
    assert chat.end_of_turn == "<|im_end|>"


def test_labels_are_exactly_the_completion_tokens(chat, smollm2_tokenizer):
    user, answer = "set a timer for ten minutes", 'timer(duration="10 minutes")'
    ids, labels = chat.tokenize(user, answer)
    prompt_ids = smollm2_tokenizer(chat.prompt(user), add_special_tokens=False)["input_ids"]
    # the inference prompt's tokens are the training sequence's prefix, token by token, and are not learned
    assert ids[: len(prompt_ids)] == prompt_ids and labels[: len(prompt_ids)] == [-100] * len(prompt_ids)
    # every token after it is learned with itself as the label, and decodes to answer + end of turn
    learned = ids[len(prompt_ids) :]
    assert labels[len(prompt_ids) :] == learned
    assert smollm2_tokenizer.decode(learned) == answer + "<|im_end|>\n"
    assert smollm2_tokenizer.convert_ids_to_tokens(learned)[-2:] == ["<|im_end|>", "Ċ"]
    # no token merges across the prompt/answer boundary: same ids as tokenising the whole text at once
    assert ids == smollm2_tokenizer(chat.prompt(user) + chat.completion(answer), add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("name, completion", [("llama2.txt", " other() </s>"), ("mistral.txt", " other()</s>")])
def test_raw_prompt_files(name, completion, tiny_data, smollm2_tokenizer):
    params = PromptParams("raw", str(ROOT / "prompts/system.txt"), str(ROOT / "prompts" / name))
    p = Prompter.build(params, tiny_data.skills, smollm2_tokenizer)
    template = (ROOT / "prompts" / name).read_text().removesuffix("\n")
    expected = template.replace("{system}", p.system).replace("{user}", "hi there").replace("{answer}", "other()")
    assert p.prompt("hi there") + p.completion("other()") == expected
    assert p.prompt("hi there").startswith("<s>[INST]") and p.prompt("hi there").endswith("[/INST]")
    assert p.completion("other()") == completion and p.end_of_turn == "</s>"
    ids, labels = p.tokenize("hi there", "other()")
    learned = [t for t, label in zip(ids, labels, strict=True) if label != -100]
    assert smollm2_tokenizer.decode(learned) == p.completion("other()")


def test_raw_mode_does_not_substitute_braces_in_the_utterance(tiny_data):
    p = Prompter("raw", "SYS", raw_template="{system}|{user}|{answer}")
    assert p.prompt("say {system} and {answer}") == "SYS|say {system} and {answer}|"


@pytest.mark.parametrize(
    "template, message",
    [("{user} only", "answer"), ("{answer} {user}", "before"), ("{user} {answer} {answer}", "exactly one")],
)
def test_bad_raw_templates_are_errors(template, message):
    with pytest.raises(PromptError, match=message):
        Prompter("raw", "SYS", raw_template=template)


def test_chat_mode_needs_a_chat_template():
    with pytest.raises(PromptError, match="chat template"):
        Prompter("chat", "SYS", tokenizer=None)


def test_answer_from_cuts_at_the_end_of_turn(chat):
    assert chat.answer_from(' weather(location="Oslo")<|im_end|>\n<|im_start|>user') == 'weather(location="Oslo")'


@pytest.mark.parametrize(
    "hints",
    [
        (False,) * 5,
        (True, False, False, False, False),
        (False, True, True, True, False),
        (True, True, True, True, True),
    ],
)
@pytest.mark.parametrize("mode", ["chat", "raw"])
def test_save_and_load_round_trip(mode, hints, tmp_path, tiny_data, smollm2_tokenizer):
    params = PromptParams(mode, str(ROOT / "prompts/system.txt"), str(ROOT / "prompts/llama2.txt"), *hints)
    p = Prompter.build(replace(params, other_bias=1.5, copy_bias=0.5), tiny_data.skills, smollm2_tokenizer)
    never = {"notes.note": ("add", "note"), "runapp.program": ()}
    within = {"notes.note": 8, "runapp.program": 6}
    spanned = ("notes.note", "runapp.program")
    inside = {"notes.note": ("stick",), "runapp.program": ("please",)}
    p = replace(p, copied=("weather.location",), spanned=spanned, never_first=never, start_within=within)
    p = replace(p, never_inside=inside)
    p.save(tmp_path / "adapter")
    q = Prompter.load(tmp_path / "adapter", smollm2_tokenizer)
    assert (q.mode, q.system, q.raw_template) == (p.mode, p.system, p.raw_template)
    assert (q.numbers, q.arithmetic, q.durations, q.addressee, q.places) == hints
    assert (q.other_bias, q.copy_bias, q.copied, q.spanned) == (1.5, 0.5, p.copied, p.spanned)
    assert (q.never_first, q.start_within, q.never_inside) == (never, within, inside)
    said = ("hi", "two plus two", "mum what's two plus two", "weather in kwala lumpur", "an hour and a half timer")
    for user in said:
        assert q.prompt(user) + q.completion("other()") == p.prompt(user) + p.completion("other()")


@pytest.mark.parametrize("mode", ["chat", "raw"])
def test_number_hint_goes_after_the_utterance_in_training_and_inference(mode, tiny_data, smollm2_tokenizer):
    params = PromptParams(mode, str(ROOT / "prompts/system.txt"), str(ROOT / "prompts/llama2.txt"), numbers=True)
    hinted = Prompter.build(params, tiny_data.skills, smollm2_tokenizer)
    plain = Prompter.build(replace(params, numbers=False), tiny_data.skills, smollm2_tokenizer)
    user = "what's two hundred minus sixty three"
    assert hinted.prompt(user) == plain.prompt(user + "\n(numbers: 200, 63)")
    assert hinted.prompt("thanks") == plain.prompt("thanks")  # no number said: no hint
    ids, labels = hinted.tokenize(user, 'math(question="200-63")')
    prompt_ids = smollm2_tokenizer(hinted.prompt(user), add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids and set(labels[: len(prompt_ids)]) == {-100}


@pytest.mark.parametrize("mode", ["chat", "raw"])
def test_hints_go_after_the_utterance_in_their_order(mode, tiny_data, smollm2_tokenizer):
    on = {"numbers": True, "arithmetic": True, "durations": True, "addressee": True}
    params = PromptParams(mode, str(ROOT / "prompts/system.txt"), str(ROOT / "prompts/llama2.txt"), **on)
    hinted = Prompter.build(params, tiny_data.skills, smollm2_tokenizer)
    off = dict.fromkeys(on, False)
    plain = Prompter.build(replace(params, **off), tiny_data.skills, smollm2_tokenizer)
    math, talk = "what's nineteen times four", "grandpa how much is nineteen times four"
    assert hinted.prompt(math) == plain.prompt(math + "\n(numbers: 19, 4)\n(math: 19*4)")
    assert hinted.prompt(talk) == plain.prompt(talk + "\n(numbers: 19, 4)\n(said to: grandpa)")
    assert hinted.prompt("alexa ask grandpa") == plain.prompt("alexa ask grandpa")  # said to the assistant
    timer = "mum an hour and forty on the brisket"
    assert hinted.prompt(timer) == plain.prompt(
        timer + "\n(numbers: 40)\n(duration: 1 hour 40 minutes)\n(said to: mum)"
    )


def test_prompter_saved_before_the_number_hint_loads_without_it(tmp_path, tiny_data, smollm2_tokenizer):
    p = Prompter.build(PromptParams("chat", str(ROOT / "prompts/system.txt")), tiny_data.skills, smollm2_tokenizer)
    p.save(tmp_path)
    config = json.loads((tmp_path / "prompt_config.json").read_text())
    del config["numbers"]
    (tmp_path / "prompt_config.json").write_text(json.dumps(config))
    assert Prompter.load(tmp_path, smollm2_tokenizer).prompt("two plus two") == p.prompt("two plus two")


@pytest.mark.parametrize("mode", ["chat", "raw"])
def test_answer_start_token_is_the_first_token_the_model_writes(mode, tiny_data, smollm2_tokenizer):
    params = PromptParams(mode, str(ROOT / "prompts/system.txt"), str(ROOT / "prompts/llama2.txt"))
    p = Prompter.build(params, tiny_data.skills, smollm2_tokenizer)
    ids, labels = p.tokenize("thanks", "other()")
    first_learned = next(t for t, label in zip(ids, labels, strict=True) if label != -100)
    assert p.answer_start_token("other()") == first_learned
    assert smollm2_tokenizer.decode([first_learned]).strip() == "other"


def test_other_bias_refuses_a_skill_whose_call_starts_like_other(tiny_data, smollm2_tokenizer):
    skills = tiny_data.skills | {"other_app": parse_signature('other_app(program="[program]") start a program.')}
    params = PromptParams("chat", str(ROOT / "prompts/system.txt"), other_bias=2.0)
    with pytest.raises(PromptError, match="other_app calls start with the same token as other"):
        Prompter.build(params, skills, smollm2_tokenizer)
    assert Prompter.build(replace(params, other_bias=0.0), skills, smollm2_tokenizer).other_bias == 0.0


def test_load_from_a_folder_without_config_names_the_file(tmp_path, smollm2_tokenizer):
    with pytest.raises(PromptError, match="prompt_config.json"):
        Prompter.load(tmp_path, smollm2_tokenizer)
