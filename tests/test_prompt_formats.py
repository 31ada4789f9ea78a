"""The prompt files in prompts/ render exactly each model family's official chat format, for training and inference.

References, written out by hand:
- Llama-2-chat (Meta's ``chat_completion`` in llama/generation.py): the system prompt goes inside the first
  ``[INST]`` as ``<<SYS>>\\n{system}\\n<</SYS>>\\n\\n``; a turn is ``<s>[INST] {user} [/INST] {answer} </s>``
  (BOS + ``f"{B_INST} {user} {E_INST} {answer} "`` + EOS); inference stops after ``[/INST]``.
- Mistral-7B-Instruct v0.1/v0.2 and Mixtral-8x7B-Instruct (mistral-common's v1 instruct tokenizer): no system
  role, the system prompt is prepended to the user message with a blank line; a turn is
  ``<s>[INST] {user} [/INST] {answer}</s>`` (no space before ``</s>``).
- ChatML (SmolLM2, Qwen): the SmolLM2 tokenizer's own chat template is the reference.
"""

import copy
from pathlib import Path

import pytest

from skillcall.prompting import Prompter, read_raw_template

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = 'Turn the words into one call. Skills:\nweather(location="[location]"): ask for the weather.\nother()'
USER, ANSWER = "is it raining in Oslo?", 'weather(location="Oslo")'

LLAMA2_PROMPT = (
    "<s>[INST] <<SYS>>\n"
    'Turn the words into one call. Skills:\nweather(location="[location]"): ask for the weather.\nother()\n'
    "<</SYS>>\n\n"
    "is it raining in Oslo? [/INST]"
)
LLAMA2_TRAINING = LLAMA2_PROMPT + ' weather(location="Oslo") </s>'
MISTRAL_PROMPT = (
    "<s>[INST] "
    'Turn the words into one call. Skills:\nweather(location="[location]"): ask for the weather.\nother()\n\n'
    "is it raining in Oslo? [/INST]"
)
MISTRAL_TRAINING = MISTRAL_PROMPT + ' weather(location="Oslo")</s>'


def raw(name: str, tokenizer=None) -> Prompter:
    return Prompter("raw", SYSTEM, tokenizer, read_raw_template(ROOT / "prompts" / name))


@pytest.mark.parametrize(
    "name, prompt, training",
    [("llama2.txt", LLAMA2_PROMPT, LLAMA2_TRAINING), ("mistral.txt", MISTRAL_PROMPT, MISTRAL_TRAINING)],
)
def test_inst_formats_match_the_official_reference_strings(name, prompt, training):
    p = raw(name)
    assert p.prompt(USER) == prompt
    assert p.prompt(USER) + p.completion(ANSWER) == training
    assert p.end_of_turn == "</s>"
    assert p.answer_from(p.completion(ANSWER) + "[INST] next") == ANSWER


def test_chatml_file_renders_exactly_the_smollm2_chat_template(smollm2_tokenizer):
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    conversation = [*messages, {"role": "assistant", "content": ANSWER}]
    template_prompt = smollm2_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    template_training = smollm2_tokenizer.apply_chat_template(conversation, tokenize=False)
    p, chat = raw("chatml.txt", smollm2_tokenizer), Prompter("chat", SYSTEM, smollm2_tokenizer)
    assert p.prompt(USER) == template_prompt
    assert p.prompt(USER) + p.completion(ANSWER) == template_training
    assert p.end_of_turn == chat.end_of_turn == "<|im_end|>"
    # the same training tokens and labels as chat mode: <|im_start|>/<|im_end|> become the special tokens
    assert p.tokenize(USER, ANSWER) == chat.tokenize(USER, ANSWER)
    ids, _ = p.tokenize(USER, ANSWER)
    assert ids.count(smollm2_tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3


@pytest.mark.parametrize("name", ["llama2.txt", "mistral.txt"])
def test_inst_formats_tokenize_to_one_bos_and_learn_the_eos(name, smollm2_tokenizer):
    """With a tokenizer where <s> and </s> are the BOS/EOS special tokens (as in Llama-2 and Mistral), the text's
    <s> is the only BOS (no second one is added) and the learned completion ends with EOS."""
    tokenizer = copy.deepcopy(smollm2_tokenizer)
    tokenizer.add_special_tokens({"bos_token": "<s>", "eos_token": "</s>"})
    p = raw(name, tokenizer)
    ids, labels = p.tokenize(USER, ANSWER)
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    learned = [i for i, label in zip(ids, labels, strict=True) if label != -100]
    assert learned[-1] == tokenizer.eos_token_id and tokenizer.decode(learned) == p.completion(ANSWER)
    assert tokenizer.decode(ids[: len(ids) - len(learned)]) == p.prompt(USER)
