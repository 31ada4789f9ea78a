"""What eval evaluates: eval.model / eval.adapter / eval.prompt / eval.prompt_file and the matching stage flags."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from tiny_adapter import SKILLS, build_tiny_adapter, tiny_rows, trained_overrides
from wandb_files import run_dirs

from skillcall.dataset import write_jsonl
from skillcall.evaluate import EvalParams, resolve_target, with_flags
from skillcall.prompting import Prompter, PromptError, read_raw_template

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "prompts"
P = EvalParams(batch_size=4, max_new_tokens=8, baseline=False, split="test")


def adapter_files(directory: Path, tokenizer, prompter: Prompter | None = None) -> Path:
    """The files of an adapter folder that eval reads before loading weights (the weights are not needed here)."""
    tokenizer.save_pretrained(directory)
    (prompter or Prompter("chat", "SYS", tokenizer)).save(directory)
    (directory / "skills.json").write_text(json.dumps([s.to_dict() for s in SKILLS.values()]))
    (directory / "training.json").write_text(json.dumps({"base_model": "recorded/base"}))
    (directory / "adapter_config.json").write_text("{}")
    return directory


@pytest.fixture
def chatml_adapter(tmp_path, smollm2_tokenizer) -> Path:
    return adapter_files(tmp_path / "adapter", smollm2_tokenizer)


def test_default_is_the_adapter_on_its_base_with_its_stored_prompt(chatml_adapter):
    target = resolve_target(chatml_adapter, None, P)
    assert (target.model, target.adapter, target.prompter.mode, set(target.skills)) == (
        "recorded/base",
        str(chatml_adapter),
        "chat",
        set(SKILLS),
    )
    assert target.record() == {
        "model": "recorded/base",
        "adapter": str(chatml_adapter),
        "prompt": {"source": "adapter", "mode": "chat", "format": "chatml", "other_bias": 0.0, "copy_bias": 0.0},
    }
    assert resolve_target(chatml_adapter, "other/base", P).model == "other/base"  # --base


def test_eval_adapter_replaces_the_command_line_path_and_brings_its_own_base(chatml_adapter, tmp_path):
    target = resolve_target(tmp_path / "does-not-exist", "models/base", replace(P, adapter=str(chatml_adapter)))
    assert (target.adapter, target.model) == (str(chatml_adapter), "recorded/base")


def test_prompt_file_of_the_same_format_replaces_the_stored_prompt(chatml_adapter):
    target = resolve_target(chatml_adapter, None, replace(P, prompt_file=str(PROMPTS / "chatml.txt")))
    assert target.prompter.mode == "raw" and target.prompter.system == "SYS"
    assert target.record()["prompt"] == {
        "source": str(PROMPTS / "chatml.txt"),
        "mode": "raw",
        "format": "chatml",
        "other_bias": 0.0,
        "copy_bias": 0.0,
    }


@pytest.mark.parametrize("name", ["llama2.txt", "mistral.txt"])
def test_an_inst_prompt_on_a_chatml_adapter_is_an_error_unless_allowed(chatml_adapter, name):
    p = replace(P, prompt_file=str(PROMPTS / name))
    family = name.removesuffix(".txt")
    with pytest.raises(PromptError, match=rf"{name}: a {family}-format prompt, but the adapter .* expects chatml"):
        resolve_target(chatml_adapter, None, p)
    target = resolve_target(chatml_adapter, None, replace(p, allow_prompt_mismatch=True))
    assert target.prompter.raw_template == read_raw_template(PROMPTS / name)


def test_an_adapter_trained_on_a_raw_prompt_expects_that_format(tmp_path, smollm2_tokenizer):
    llama2 = Prompter("raw", "SYS", smollm2_tokenizer, read_raw_template(PROMPTS / "llama2.txt"))
    adapter = adapter_files(tmp_path / "adapter", smollm2_tokenizer, llama2)
    assert (
        resolve_target(adapter, None, replace(P, prompt_file=str(PROMPTS / "llama2.txt"))).prompter.family == "llama2"
    )
    with pytest.raises(PromptError, match="a chatml-format prompt, but the adapter .* expects llama2"):
        resolve_target(adapter, None, replace(P, prompt="chat"))  # the ChatML template of its tokenizer


def test_inline_prompts(chatml_adapter):
    target = resolve_target(chatml_adapter, None, replace(P, prompt="{system}\nQ: {user}\nA: {answer}"))
    assert target.prompter.prompt("hi") == "SYS\nQ: hi\nA:" and target.record()["prompt"]["source"] == "inline"
    assert target.record()["prompt"]["format"] is None  # an unknown format is accepted
    assert resolve_target(chatml_adapter, None, replace(P, prompt="chat")).prompter.mode == "chat"


def test_bad_prompts_are_errors_naming_the_problem(chatml_adapter, tmp_path):
    no_user = tmp_path / "no_user.txt"
    no_user.write_text("<|im_start|>user\n{system}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>\n")
    with pytest.raises(PromptError, match=rf"{no_user}: needs exactly one {{user}} placeholder"):
        resolve_target(chatml_adapter, None, replace(P, prompt_file=str(no_user)))
    with pytest.raises(PromptError, match="eval.prompt: needs exactly one {answer} placeholder"):
        resolve_target(chatml_adapter, None, replace(P, prompt="{user}"))
    with pytest.raises(PromptError, match="missing.txt: no such prompt file"):
        resolve_target(chatml_adapter, None, replace(P, prompt_file=str(tmp_path / "missing.txt")))
    with pytest.raises(PromptError, match="not both"):
        resolve_target(chatml_adapter, None, replace(P, prompt="chat", prompt_file=str(PROMPTS / "chatml.txt")))


def test_a_model_alone_uses_its_chat_template_and_the_adapters_skills(chatml_adapter, tiny_model_dir):
    target = resolve_target(chatml_adapter, None, replace(P, model=str(tiny_model_dir)))
    assert (target.model, target.adapter, set(target.skills)) == (str(tiny_model_dir), None, set(SKILLS))
    assert target.prompter.mode == "chat" and target.prompter.system == "SYS"
    assert target.record()["prompt"] == {
        "source": "chat",
        "mode": "chat",
        "format": "chatml",
        "other_bias": 0.0,
        "copy_bias": 0.0,
    }
    with pytest.raises(PromptError, match="but .* expects chatml"):
        resolve_target(
            chatml_adapter, None, replace(P, model=str(tiny_model_dir), prompt_file=str(PROMPTS / "mistral.txt"))
        )


def test_a_model_without_chat_template_needs_a_prompt(chatml_adapter, tmp_path, smollm2_tokenizer):
    import copy

    tokenizer = copy.deepcopy(smollm2_tokenizer)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path / "plain")
    with pytest.raises(PromptError, match="plain has no chat template: give a prompt"):
        resolve_target(chatml_adapter, None, replace(P, model=str(tmp_path / "plain")))
    p = replace(P, model=str(tmp_path / "plain"), prompt_file=str(PROMPTS / "llama2.txt"))
    assert resolve_target(chatml_adapter, None, p).prompter.family == "llama2"  # nothing to mismatch


def test_a_missing_adapter_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope: no adapter folder"):
        resolve_target(tmp_path / "nope", None, P)


def test_a_merged_export_is_evaluated_as_a_model(tmp_path, smollm2_tokenizer):
    merged = adapter_files(tmp_path / "merged", smollm2_tokenizer)
    (merged / "adapter_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="adapter_config.json: missing; evaluate a merged export with"):
        resolve_target(merged, None, P)
    target = resolve_target("models/adapter", None, replace(P, model=str(merged)))
    assert (target.model, target.adapter, target.record()["prompt"]["source"]) == (str(merged), None, "model")


def test_flags_win_over_params():
    p = replace(P, model="models/base", prompt_file="prompts/llama2.txt")
    q = with_flags(p, model="models/merged", prompt=None, prompt_file=None, allow_prompt_mismatch=False)
    assert (q.model, q.prompt_file, q.allow_prompt_mismatch) == ("models/merged", "prompts/llama2.txt", False)
    assert with_flags(p, allow_prompt_mismatch=True).allow_prompt_mismatch


def test_the_repo_params_default_to_the_current_behaviour():
    from skillcall.params import load_params

    p = load_params("eval", EvalParams, ROOT / "params.yaml")
    assert (p.model, p.adapter, p.prompt, p.prompt_file, p.allow_prompt_mismatch) == (None, None, None, None, False)


# --- the stage ------------------------------------------------------------------------------------------------------


def stage_dir(tmp_path, monkeypatch, baseline: bool) -> Path:
    """A working folder with params.yaml (small generations) and a dataset of the tiny test rows."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["eval"].update(batch_size=4, max_new_tokens=8, baseline=baseline)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dataset").mkdir()
    write_jsonl(tmp_path / "dataset" / "test.jsonl", tiny_rows())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def eval_stage(adapter, out, *flags) -> dict:
    from stages.eval import main

    main(["--adapter", str(adapter), "--dataset", "dataset", "--out", str(out), *flags])
    details = json.loads((out / "details.json").read_text())
    return json.loads((out / "metrics.json").read_text()) | {"evaluated": details["evaluated"]}


def raw_predictions(out: Path, name: str = "predictions.jsonl") -> list[str]:
    return [json.loads(line)["raw"] for line in (out / name).read_text().splitlines()]


def test_stage_refuses_a_mismatched_prompt_before_anything_runs(chatml_adapter, tmp_path, monkeypatch, wandb_offline):
    stage_dir(tmp_path, monkeypatch, baseline=True)
    with pytest.raises(PromptError, match="llama2-format prompt"):
        eval_stage(chatml_adapter, tmp_path / "out", "--prompt-file", str(PROMPTS / "llama2.txt"))
    assert not (tmp_path / "out").exists() and run_dirs(wandb_offline) == []


@pytest.fixture(scope="module")
def trained_adapter(tmp_path_factory, tiny_model_dir):
    return build_tiny_adapter(tmp_path_factory, tiny_model_dir, "trained_adapter", **trained_overrides())


@pytest.mark.slow
def test_stage_overrides_evaluate_what_they_say(trained_adapter, tiny_model_dir, tmp_path, monkeypatch, wandb_offline):
    """Same weights + same text -> same predictions: the adapter, its merged export, the adapter with the ChatML
    prompt file (identical to its chat template); the base alone equals the adapter run's baseline."""
    from skillcall.export import export

    stage_dir(tmp_path, monkeypatch, baseline=True)
    merged = export(trained_adapter, tmp_path / "merged")
    default = eval_stage(trained_adapter, tmp_path / "default")
    outs = {
        "merged": eval_stage(trained_adapter, tmp_path / "merged_eval", "--model", str(merged)),
        "chatml": eval_stage(trained_adapter, tmp_path / "chatml", "--prompt-file", str(PROMPTS / "chatml.txt")),
        "base": eval_stage(trained_adapter, tmp_path / "base", "--model", str(tiny_model_dir)),
    }
    assert all(raw_predictions(tmp_path / "default")), "the trained adapter answers every utterance"
    assert raw_predictions(tmp_path / "merged_eval") == raw_predictions(tmp_path / "default")
    assert raw_predictions(tmp_path / "chatml") == raw_predictions(tmp_path / "default")
    base, default_dir = tmp_path / "base", tmp_path / "default"  # the base alone, in each setting, is the baseline
    assert raw_predictions(base, "unconstrained_predictions.jsonl") == raw_predictions(
        default_dir, "baseline_predictions.jsonl"
    )
    assert raw_predictions(base) == raw_predictions(default_dir, "baseline_constrained_predictions.jsonl")

    assert "baseline_ast_accuracy" in default and "baseline_ast_accuracy" in outs["chatml"]
    for name in ("merged", "base"):  # no adapter to leave out; the baseline's DVC outputs are there, empty
        assert "baseline_ast_accuracy" not in outs[name]
        for file in ("baseline_predictions.jsonl", "baseline_constrained_predictions.jsonl"):
            assert (tmp_path / ("merged_eval" if name == "merged" else name) / file).read_text() == ""
    assert outs["merged"]["evaluated"] == {
        "model": str(merged),
        "adapter": None,
        "prompt": {"source": "model", "mode": "chat", "format": "chatml", "other_bias": 0.0, "copy_bias": 0.0},
        "decoding": "constrained",
    }
    assert outs["chatml"]["evaluated"]["adapter"] == str(trained_adapter)
    assert outs["chatml"]["evaluated"]["prompt"] == {
        "source": str(PROMPTS / "chatml.txt"),
        "mode": "raw",
        "format": "chatml",
        "other_bias": 0.0,
        "copy_bias": 0.0,
    }
    assert outs["base"]["evaluated"]["model"] == str(tiny_model_dir)
    assert len(run_dirs(wandb_offline)) == 4
