"""The GGUF export: the tiny merged model written as GGUF f16/q8_0/q4_0 loads back in transformers with the merged
model's logits; eval and predict take a .gguf path; the grammar file is written beside."""

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_adapter import TINY_TEST, build_tiny_adapter, trained_overrides

from skillcall.export import gguf_name, permute_qk, tensor_type

UTTERANCES = [u for u, _, _ in TINY_TEST]
ROOT = Path(__file__).resolve().parents[1]


def test_permutation_interleaves_the_halves_of_each_head():
    w = np.arange(16 * 3).reshape(16, 3)  # 2 heads of 8 rows
    p = permute_qk(w, 2)
    assert p[:, 0].tolist() == [0, 12, 3, 15, 6, 18, 9, 21, 24, 36, 27, 39, 30, 42, 33, 45]
    assert sorted(p.ravel().tolist()) == sorted(w.ravel().tolist())


def test_names_and_types_follow_llama_cpp():
    assert gguf_name("model.layers.12.mlp.down_proj.weight") == "blk.12.ffn_down.weight"
    assert gguf_name("model.norm.weight") == "output_norm.weight" and gguf_name("model.rotary_emb.inv_freq") is None
    assert tensor_type("blk.0.attn_norm.weight", (64,), "q4_0").name == "F32"
    assert tensor_type("blk.0.ffn_down.weight", (64, 128), "q8_0").name == "Q8_0"
    assert tensor_type("blk.0.ffn_down.weight", (64, 100), "q8_0").name == "F16"  # 100 values: no 32-blocks


@pytest.fixture(scope="module")
def trained_adapter(tmp_path_factory, tiny_model_dir):
    return build_tiny_adapter(tmp_path_factory, tiny_model_dir, "trained_adapter", **trained_overrides())


@pytest.fixture(scope="module")
def exported(trained_adapter, tmp_path_factory):
    from skillcall.export import export_gguf

    out = tmp_path_factory.mktemp("gguf") / "export"
    export_gguf(trained_adapter, out)
    return out


def last_logits(model, prompter):
    import torch

    with torch.inference_mode():
        return torch.stack(
            [model(**prompter.tokenizer(prompter.prompt(u), return_tensors="pt")).logits[0, -1] for u in UTTERANCES]
        )


@pytest.mark.slow
def test_gguf_files_reproduce_the_merged_models_logits(exported, trained_adapter):
    from skillcall.export import merge
    from skillcall.models import load_trained

    assert sorted(p.name for p in exported.iterdir()) == sorted(
        [
            "skillcall-f16.gguf",
            "skillcall-q8_0.gguf",
            "skillcall-q4_0.gguf",
            "skills.gbnf",
            "prompt_config.json",
            "system_prompt.txt",
            "skills.json",
            "training.json",
        ]
    )
    assert (exported / "skills.gbnf").read_text().startswith("root ::= weather | notes | timer | other\n")
    merged, _, _ = merge(trained_adapter)
    _, prompter, _ = load_trained(trained_adapter)
    want = last_logits(merged, prompter)
    errors = {}
    for kind in ("f16", "q8_0", "q4_0"):
        model, gguf_prompter, skills = load_trained(exported / f"skillcall-{kind}.gguf")
        assert gguf_prompter.prompt("hi") == prompter.prompt("hi") and set(skills) == {
            "weather",
            "notes",
            "timer",
            "other",
        }
        got = last_logits(model, gguf_prompter)
        errors[kind] = ((got - want).abs().max() / want.abs().max()).item()
        assert (got.argmax(-1) == want.argmax(-1)).all() or kind == "q4_0", kind
    assert errors["f16"] < 2e-3 and errors["q8_0"] < 2e-2 and errors["q4_0"] < 0.2, errors
    assert errors["f16"] < errors["q8_0"] < errors["q4_0"], errors


@pytest.mark.slow
def test_eval_and_predict_take_a_gguf_file(exported, trained_adapter, tmp_path, monkeypatch, capsys, wandb_offline):
    import yaml

    from skillcall.dataset import write_jsonl
    from skillcall.predict import main as predict
    from stages.eval import main as eval_stage

    f16 = exported / "skillcall-f16.gguf"
    predict(["--model", str(f16), "--json", "--max-new-tokens", "16", "thanks a lot", "weather in Rome"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["utterance"] for r in lines] == ["thanks a lot", "weather in Rome"] and all(r["valid"] for r in lines)

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["eval"].update(batch_size=4, max_new_tokens=16)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    write_jsonl(tmp_path / "test.jsonl", [{"user": u, "answer": a} for u, a, _ in TINY_TEST])
    monkeypatch.chdir(tmp_path)
    eval_stage(["--model", str(f16), "--adapter", str(trained_adapter), "--test-file", "test.jsonl", "--out", "out"])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    details = json.loads((tmp_path / "out" / "details.json").read_text())
    assert details["test"]["n"] == len(TINY_TEST) and details["constrained"]["valid_rate"] == 1.0
    assert {"constrained_ast_accuracy", "unconstrained_ast_accuracy"} <= set(metrics)
    assert "baseline_ast_accuracy" not in metrics and "baseline" not in details
