import json

import pytest
from tiny_adapter import TINY_TEST, build_tiny_adapter

from skillcall.export import export, main

UTTERANCES = [u for u, _, _ in TINY_TEST] + ["x", "what is the weather going to be like in San Francisco tomorrow"]


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory, tiny_model_dir):
    return build_tiny_adapter(tmp_path_factory, tiny_model_dir)


@pytest.fixture(scope="module")
def merged(tiny_adapter, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "merged"
    main(["--adapter", str(tiny_adapter), "--out", str(out)])
    return out


def greedy_ids(model, prompter, users) -> list[list[int]]:
    out = []
    for u in users:
        inputs = prompter.tokenizer(prompter.prompt(u), return_tensors="pt")
        ids = model.generate(**inputs, do_sample=False, max_new_tokens=8, min_new_tokens=8, pad_token_id=0)
        out.append(ids[0, inputs["input_ids"].shape[1] :].tolist())
    return out


def last_logits(model, prompter, users):
    import torch

    with torch.inference_mode():
        return [model(**prompter.tokenizer(prompter.prompt(u), return_tensors="pt")).logits[0, -1] for u in users]


@pytest.mark.slow
def test_merged_folder_is_a_plain_model_with_the_adapters_prompt_and_skills(merged, tiny_adapter):
    from safetensors.torch import load_file

    assert not (merged / "adapter_config.json").exists() and not (merged / "adapter_model.safetensors").exists()
    weights = load_file(merged / "model.safetensors")
    assert weights and not any("lora" in k for k in weights)
    assert (merged / "config.json").exists()
    for name in ["tokenizer.json", "chat_template.jinja", "prompt_config.json", "system_prompt.txt", "skills.json"]:
        assert (merged / name).read_bytes() == (tiny_adapter / name).read_bytes(), name
    training = json.loads((merged / "training.json").read_text())
    adapter_training = json.loads((tiny_adapter / "training.json").read_text())
    assert training["merged_from"] == {"adapter": str(tiny_adapter), "base_model": adapter_training["base_model"]}
    assert {k: v for k, v in training.items() if k != "merged_from"} == adapter_training


@pytest.mark.slow
def test_merged_model_loads_without_peft_and_predicts_like_base_plus_adapter(merged, tiny_adapter, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    from skillcall.models import load_trained

    plain = AutoModelForCausalLM.from_pretrained(merged)
    assert type(plain) is LlamaForCausalLM and not hasattr(plain, "peft_config")
    with_adapter, prompter, _ = load_trained(tiny_adapter)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)

    # the LoRA delta is in the weights: logits equal base+adapter's and differ from the base's
    ours, theirs, untuned = (last_logits(m, prompter, UTTERANCES) for m in (plain, with_adapter, base))
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(ours, theirs, strict=True))
    assert max((a - b).abs().max().item() for a, b in zip(ours, untuned, strict=True)) > 1e-3

    # greedy generations without any stopping rule: 8 new tokens per utterance, token for token the same
    generations = [greedy_ids(m, prompter, UTTERANCES) for m in (plain, with_adapter)]
    assert generations[0] == generations[1] and all(len(ids) == 8 for ids in generations[0])


def test_export_refuses_a_folder_that_is_not_an_adapter(tmp_path):
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        export(tmp_path, tmp_path / "out")


@pytest.mark.slow
def test_predict_uses_the_merged_folder_like_an_adapter(merged, capsys):
    from skillcall.predict import main as predict

    predict(["--adapter", str(merged), "--json", "--max-new-tokens", "4", "thanks a lot", "weather in Rome"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["utterance"] for r in lines] == ["thanks a lot", "weather in Rome"]
