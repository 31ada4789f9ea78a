import copy

import pytest

from skillcall.base import BaseModelError, BaseParams, build, check_chat_template, convert, gguf_path


def test_the_gguf_ships_in_site_packages():
    path = gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_chat_template_must_be_chatml(smollm2_tokenizer):
    check_chat_template(smollm2_tokenizer)
    llama2 = copy.deepcopy(smollm2_tokenizer)
    llama2.chat_template = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"
    with pytest.raises(BaseModelError, match="ChatML"):
        check_chat_template(llama2)


@pytest.mark.slow
def test_conversion_gives_a_plain_hf_folder_that_chats(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    convert(tmp_path / "base")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "base")
    assert not getattr(model, "is_quantized", False) and "quantization_config" not in model.config.to_dict()
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert "<|im_start|>" in tokenizer.chat_template and tokenizer.model_max_length == 8192
    assert tokenizer.eos_token == "<|im_end|>"
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=16, do_sample=False)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    words = answer.split()
    assert len(words) >= 3 and sum(w.isascii() for w in words) == len(words), answer
    assert "Paris" in answer, answer


@pytest.mark.slow
def test_base_model_param_saves_any_hf_folder(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, source = build(BaseParams(model=str(tiny_model_dir)), tmp_path / "base")
    assert source == str(tiny_model_dir)
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "base").state_dict()
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    assert saved.keys() == original.keys() and all(torch.equal(saved[k], original[k]) for k in saved)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "base")
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(tiny_model_dir).chat_template
