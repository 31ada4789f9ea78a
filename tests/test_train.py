import json
import math
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback
from trl import SFTTrainer
from wandb_files import artifacts, config, history, run_dirs

from skillcall.dataset import Row, read_rows
from skillcall.generation import generate
from skillcall.models import QuantizationError, auto_dtype, check_quantization, load_trained, resolve_dtype
from skillcall.params import load_params
from skillcall.prompting import Prompter, PromptParams
from skillcall.train import (
    FinetuneParams,
    NoLearnableTokensError,
    PrefixSharingTrainer,
    check_learnable,
    file_sha256,
    length_grouped_order,
    prepare_checkpoints,
    save_adapter,
    sft_config,
    shared_prefix_length,
    tokenize_rows,
    train,
)

ROOT = Path(__file__).resolve().parents[1]
PROMPT = PromptParams("chat", str(ROOT / "prompts/system.txt"), str(ROOT / "prompts/llama2.txt"))


def tiny_params(**overrides) -> FinetuneParams:
    """The repo's finetune params, shrunk for the tiny model (a high learning rate so a few steps show); float32
    whatever the CPU, so the exact comparisons hold (bfloat16 has its own test)."""
    p = load_params("finetune", FinetuneParams, ROOT / "params.yaml")
    small = dict(
        dtype="float32",
        prompt=PROMPT,
        max_steps=8,
        batch_size=4,
        learning_rate=1e-2,
        warmup_steps=0,
        logging_steps=1,
        save_steps=4,
        eval_steps=4,
        eval_rows=2,
        eval_batch_size=4,
        sample_predictions=3,
        max_new_tokens=8,
    )
    return replace(p, **{**small, **overrides})


@pytest.fixture
def chat(tiny_data, smollm2_tokenizer) -> Prompter:
    return Prompter.build(PROMPT, tiny_data.skills, smollm2_tokenizer)


def test_guard_raises_when_no_answer_token_is_left(tiny_data, chat):
    rows = read_rows(tiny_data.train)
    examples = tokenize_rows(rows, chat)
    check_learnable(examples, [r.file for r in rows], max_length=400)
    prompt_len = min(e["labels"].index(next(x for x in e["labels"] if x != -100)) for e in examples)
    with pytest.raises(NoLearnableTokensError, match=r"tiny:\d+: no answer token left to learn.*max_length"):
        check_learnable(examples, [r.file for r in rows], max_length=prompt_len)


def test_training_refuses_an_arithmetic_dropout_that_is_no_share(tiny_model_dir, tiny_data, tmp_path):
    with pytest.raises(ValueError, match=r"finetune.arithmetic_dropout is a share of rows in \[0, 1\], got 1.5"):
        train(
            tiny_params(arithmetic_dropout=1.5),
            tiny_model_dir,
            tiny_data.train,
            tiny_data.val,
            tiny_data.skills,
            tmp_path,
        )


def test_training_refuses_to_start_without_learnable_tokens(tiny_model_dir, tiny_data, tmp_path):
    with pytest.raises(NoLearnableTokensError, match="tiny:1"):
        train(tiny_params(max_length=20), tiny_model_dir, tiny_data.train, tiny_data.val, tiny_data.skills, tmp_path)
    assert not (tmp_path / "checkpoint-1").exists()


def test_shared_prefix_is_the_system_turn(tiny_data, chat, smollm2_tokenizer):
    examples = tokenize_rows(read_rows(tiny_data.train), chat)
    n = shared_prefix_length(examples)
    prefix = smollm2_tokenizer.decode(examples[0]["input_ids"][:n])
    assert prefix.startswith(f"<|im_start|>system\n{chat.system}<|im_end|>\n")
    assert all(chat.prompt(r.user).startswith(prefix) for r in read_rows(tiny_data.train))
    assert all(e["labels"][n] == -100 for e in examples)  # the first learned label is scored by the suffix pass


def test_arithmetic_dropout_leaves_the_math_line_out_of_that_share_of_rows(tiny_data, smollm2_tokenizer):
    prompter = Prompter.build(replace(PROMPT, arithmetic=True), tiny_data.skills, smollm2_tokenizer)
    products = [Row(f"what's {a} times 7", f'math(question="{a}*7")', "math", "hand", "m") for a in range(10, 50)]
    rows = [*products, Row("thanks that was great", "other()", "other", "hand", "o")]

    def lines(rows: list[Row], share: float) -> list[int]:
        examples = tokenize_rows(rows, prompter, share, seed=0)
        return [smollm2_tokenizer.decode(e["input_ids"]).count("(math: ") for e in examples]

    assert lines(rows, 0.0) == [1] * 40 + [0]
    half = lines(rows, 0.5)
    assert 10 < half[:40].count(0) < 30 and half[40] == 0  # about half of the 40 products lose the line
    assert lines(rows[::-1], 0.5) == half[::-1]  # the same rows whatever their order
    assert lines(rows, 1.0) == [0] * 41


def test_file_hashes_follow_the_content(tmp_path):
    a, b = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    a.write_text("1\n")
    b.write_text("2\n")
    first = file_sha256([a, b])
    a.write_text("1 \n")
    second = file_sha256([a, b])
    assert first["val"] == second["val"] and first["train"] != second["train"] and first["all"] != second["all"]


def test_quantization_checks():
    with pytest.raises(QuantizationError, match="one of none, 4bit, 8bit"):
        check_quantization("3bit")
    check_quantization("4bit")  # bitsandbytes' CPU backend runs a 4-bit layer forward and backward
    check_quantization("8bit")


def test_resume_refuses_checkpoints_of_other_params(tmp_path):
    (tmp_path / "ckpt" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / "ckpt" / "fingerprint.json").write_text(json.dumps({"params": {"lr": 1}}))
    with pytest.raises(ValueError, match="other params or data"):
        prepare_checkpoints(tmp_path / "ckpt", print, resume=True, fp={"params": {"lr": 2}})
    assert prepare_checkpoints(tmp_path / "ckpt", print, resume=False, fp={"params": {"lr": 2}}) is None
    assert not (tmp_path / "ckpt" / "checkpoint-2").exists()


def test_length_grouped_order_cuts_padding_and_keeps_every_row_once():
    rng = __import__("random").Random(1)
    lengths = [rng.randint(5, 55) for _ in range(1000)]  # 1000 = 62 batches of 16 and a short one of 8

    def padding(order: list[int]) -> int:
        batches = [order[k : k + 16] for k in range(0, len(order), 16)]
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    grouped, plain = length_grouped_order(lengths, 16, 8, seed=0), length_grouped_order(lengths, 16, 1, seed=0)
    assert sorted(grouped) == sorted(plain) == list(range(1000))
    assert padding(grouped) < padding(plain) / 3
    assert grouped != length_grouped_order(lengths, 16, 8, seed=1)  # seeded: another seed, another order
    assert grouped == length_grouped_order(lengths, 16, 8, seed=0)
    # batches are shuffled, not run from short to long: the first ten batches' maxima are not sorted
    maxima = [max(lengths[i] for i in grouped[k : k + 16]) for k in range(0, 160, 16)]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)
    # each batch is a slice of a sorted window, and the one short batch is last: so every run of 16 the trainer
    # cuts is sorted by length (a short batch in the middle would shift the cuts across two batches)
    runs = [[lengths[i] for i in grouped[k : k + 16]] for k in range(0, 1000, 16)]
    assert all(run == sorted(run) for run in runs) and len(runs[-1]) == 8


@pytest.mark.slow
def test_trainer_batches_come_length_grouped(tiny_model_dir, tiny_data, chat, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from skillcall.train import LengthGroupedSampler

    p = tiny_params(eval_steps=0)
    examples = tokenize_rows(read_rows(tiny_data.train), chat)
    for group in (1, 4):
        trainer = PrefixSharingTrainer(
            model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
            args=sft_config(p, tmp_path / str(group), max_length=400),
            train_dataset=Dataset.from_list(examples),
            processing_class=chat.tokenizer,
            prefix_ids=[],
            length_group=group,
        )
        loader = trainer.get_train_dataloader()
        assert isinstance(loader.batch_sampler.sampler, LengthGroupedSampler) == (group > 1)
        batches = [b["input_ids"] for b in loader]
        assert sum(len(b) for b in batches) == len(examples)  # every row once per epoch
        if group > 1:  # the rows of a batch have the lengths of one sorted run of the window
            order = [len(examples[i]["input_ids"]) for i in loader.batch_sampler.sampler]
            assert [b.shape[1] for b in batches] == [max(order[k : k + 4]) for k in range(0, len(order), 4)]


@pytest.mark.slow
def test_prefix_sharing_gives_the_same_loss_and_gradients(tiny_model_dir, tiny_data, chat, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from skillcall.train import lora_model

    p = tiny_params(lora=replace(tiny_params().lora, dropout=0.0), eval_steps=0)  # no eval set here
    examples = tokenize_rows(read_rows(tiny_data.train), chat)
    n = shared_prefix_length(examples)
    results = []
    for prefix_len, prefix_grad in ((0, True), (n, True), (n, False)):
        model = lora_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), p)
        data = [{k: v[prefix_len:] for k, v in e.items()} for e in examples]
        trainer = PrefixSharingTrainer(
            model=model,
            args=sft_config(p, tmp_path / str(prefix_len), max_length=400),
            train_dataset=Dataset.from_list(data),
            processing_class=chat.tokenizer,
            prefix_ids=examples[0]["input_ids"][:prefix_len],
            prefix_grad=prefix_grad,
        )
        batch = trainer._prepare_inputs(trainer.data_collator(data[:4]))
        if not prefix_len:  # the reference: trl's own loss (fused head at every position) on the full sequences
            reference = SFTTrainer.compute_loss(trainer, model, dict(batch)).item()
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        grads = {k: v.grad.clone() for k, v in model.named_parameters() if v.grad is not None}
        results.append((loss.item(), grads))
    (full_loss, full_grads), (shared_loss, shared_grads), (frozen_loss, frozen_grads) = results
    assert full_loss == pytest.approx(reference, rel=1e-5) and shared_loss == pytest.approx(full_loss, rel=1e-5)
    assert full_grads.keys() == shared_grads.keys() and all("lora_" in k for k in full_grads)
    for k in full_grads:
        torch.testing.assert_close(shared_grads[k], full_grads[k], rtol=1e-4, atol=1e-6)
    # prefix_grad=False: the same loss; every LoRA weight still learns, but without the prefix's share
    assert frozen_loss == pytest.approx(full_loss, rel=1e-5) and frozen_grads.keys() == full_grads.keys()
    assert any(not torch.allclose(frozen_grads[k], full_grads[k], rtol=1e-3, atol=1e-6) for k in full_grads)
    assert all(frozen_grads[k].abs().sum() > 0 for k in full_grads if "lora_B" in k)


@pytest.mark.slow
def test_top_layers_puts_lora_in_the_last_layers_only(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from skillcall.train import lora_model

    def lora_layers(top: int) -> set[int]:
        p = tiny_params(lora=replace(tiny_params().lora, top_layers=top))
        model = lora_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), p)
        return {int(k.split(".layers.")[1].split(".")[0]) for k, v in model.named_parameters() if v.requires_grad}

    assert lora_layers(0) == {0, 1} and lora_layers(1) == {1}  # the tiny model has 2 decoder layers
    with pytest.raises(ValueError, match="top_layers must be 0..2"):
        lora_layers(3)


@pytest.mark.slow
def test_training_changes_only_lora_weights(tiny_model_dir, tiny_data, tmp_path):
    result = train(tiny_params(), tiny_model_dir, tiny_data.train, tiny_data.val, tiny_data.skills, tmp_path / "ckpt")
    original = load_file(tiny_model_dir / "model.safetensors")
    trained = {k: v for k, v in result.model.named_parameters()}
    assert all(("lora_" in k) == v.requires_grad for k, v in trained.items())
    base = {
        k.replace("base_model.model.", "").replace(".base_layer", ""): v for k, v in trained.items() if "lora_" not in k
    }
    assert set(base) <= set(original)
    for k, v in base.items():
        assert torch.equal(v.detach(), original[k]), k
    lora_b = [v for k, v in trained.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # LoRA B starts at zero; training moved it
    assert result.metrics["steps"] == 8 and result.metrics["trainable_params"] == sum(
        v.numel() for k, v in trained.items() if "lora_" in k
    )


@pytest.mark.slow
def test_finetune_stage_end_to_end(tiny_model_dir, tiny_data, wandb_offline, tmp_path, monkeypatch):
    """The stage as DVC runs it: params.yaml in the working dir, paths on the command line, W&B offline files."""
    import yaml

    from stages import finetune

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    p = tiny_params(prompt=replace(PROMPT, spans=True))
    params["finetune"] = asdict(p)
    params["wandb"] = {"project": "test", "entity": None, "group": "g", "tags": ["ci"]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_EXP_NAME", "tiny-exp")
    adapter, metrics_file, live = tmp_path / "adapter", tmp_path / "train_metrics.json", tmp_path / "dvclive"
    args = [str(tiny_model_dir), str(tiny_data.train), str(tiny_data.val), str(tiny_data.examples_dir)]
    finetune.main([*args, str(adapter), str(metrics_file), str(live), "--checkpoints", str(tmp_path / "ckpt")])

    # the adapter folder is self-contained
    for name in ["adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "chat_template.jinja",
                 "prompt_config.json", "system_prompt.txt", "skills.json", "training.json"]:  # fmt: skip
        assert (adapter / name).exists(), name
    assert all("lora_" in k for k in load_file(adapter / "adapter_model.safetensors"))
    training = json.loads((adapter / "training.json").read_text())
    assert training["base_model"] == str(tiny_model_dir)
    assert training["dataset_sha256"] == file_sha256([tiny_data.train, tiny_data.val])
    assert [s["name"] for s in json.loads((adapter / "skills.json").read_text())] == ["other", "timer", "weather"]
    decoding = json.loads((adapter / "prompt_config.json").read_text())  # what the span constraint reads
    assert decoding["spanned"] and set(decoding["never_first"]) == set(decoding["spanned"])
    assert set(decoding["start_within"]) <= set(decoding["spanned"]) and all(decoding["start_within"].values())
    assert set(decoding["never_inside"]) == set(decoding["spanned"])
    metrics = json.loads(metrics_file.read_text())
    assert set(metrics) == {"train_loss", "val_loss", "train_seconds"}  # flat and small: a DVC metric
    assert metrics["val_loss"] == training["metrics"]["val_loss"]
    assert {"steps", "tokens", "train_seconds", "trainable_params"} <= set(training["metrics"])  # the rest is here

    # DVCLive curve and W&B run: loss per step going down, val loss, sample table, model artifact
    loss_tsv = (live / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert loss_tsv[0].split("\t")[:2] == ["step", "loss"] and len(loss_tsv) == 1 + 8
    (run_dir,) = run_dirs(wandb_offline)
    assert run_dir.name.startswith("offline-run-")
    losses = [h["train/loss"] for h in history(run_dir) if "train/loss" in h]
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert [h["_step"] for h in history(run_dir) if "val/loss" in h] == [4, 8]  # a curve on the val subset
    assert any("train/lr" in h for h in history(run_dir))
    val_tsv = (live / "plots" / "metrics" / "val" / "loss.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in val_tsv[1:]] == ["4", "8"]
    png = live / "plots" / "images" / "loss.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000
    assert list((run_dir / "files" / "media" / "images" / "finetune").glob("loss_*.png"))  # and a W&B image
    cfg = config(run_dir)
    assert cfg["learning_rate"] == 1e-2 and cfg["lora"]["r"] == p.lora.r and "dvc_inputs" in cfg
    (table,) = (run_dir / "files" / "media" / "table" / "val").glob("samples_*.table.json")
    table = json.loads(table.read_text())
    assert table["columns"] == ["utterance", "gold", "prediction", "correct"] and len(table["data"]) == 3
    (artifact,) = [a for a in artifacts(run_dir) if a.type == "model"]
    meta = json.loads(artifact.metadata)
    assert meta["base_model"] == str(tiny_model_dir) and meta["prompt_mode"] == "chat"
    assert meta["dataset_sha256"] == training["dataset_sha256"]["all"] and meta["metrics"]["steps"] == 8
    assert "adapter_model.safetensors" in [e.path for e in artifact.manifest.contents]

    # the folder alone is enough to predict
    model, prompter, skills = load_trained(adapter)
    answers = [g.text for g in generate(model, prompter, ["weather in Paris", "thanks"], 2, max_new_tokens=6)]
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers) and set(skills) == set(tiny_data.skills)


@pytest.mark.slow
def test_seeded_and_resumable(tiny_model_dir, tiny_data, tmp_path):
    p = tiny_params(max_steps=4, save_steps=2, sample_predictions=0)

    def adapter_weights(ckpt: Path, resume: bool = False) -> dict:
        result = train(p, tiny_model_dir, tiny_data.train, tiny_data.val, tiny_data.skills, ckpt, resume=resume)
        return {k: v.detach().clone() for k, v in result.model.named_parameters() if "lora_" in k}

    first = adapter_weights(tmp_path / "a")
    second = adapter_weights(tmp_path / "b")
    assert all(torch.equal(first[k], second[k]) for k in first)  # same params + data -> same adapter
    shutil.rmtree(tmp_path / "b" / "checkpoint-4")  # as if killed after step 2
    resumed = adapter_weights(tmp_path / "b", resume=True)
    for k in first:
        torch.testing.assert_close(resumed[k], first[k], rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_qlora_4bit_trains_and_reloads(tiny_model_dir, tiny_data, tmp_path):
    p = tiny_params(quantization="4bit", max_steps=3, sample_predictions=2)
    result = train(p, tiny_model_dir, tiny_data.train, tiny_data.val, tiny_data.skills, tmp_path / "ckpt")
    assert any("Linear4bit" in type(m).__name__ for m in result.model.modules())
    assert result.metrics["steps"] == 3 and result.metrics["train_loss"] > 0
    save_adapter(tmp_path / "adapter", result, tiny_data.skills, p)
    model, prompter, _ = load_trained(tmp_path / "adapter")
    assert any("Linear4bit" in type(m).__name__ for m in model.modules())
    assert len(generate(model, prompter, ["hi"], 1, max_new_tokens=4)) == 1


@pytest.mark.slow
def test_bfloat16_trains_the_base_in_bf16_with_float32_lora_and_reloads(tiny_model_dir, tiny_data, tmp_path):
    """``dtype: bfloat16`` (what ``auto`` is on a CPU with AVX512-BF16): the frozen base in bf16, LoRA weights and
    their updates in fp32 (peft keeps adapters in fp32), the loss finite and falling; the adapter reloads in bf16."""
    losses: list[float] = []

    class Losses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            losses.extend([logs["loss"]] if "loss" in (logs or {}) else [])

    p = tiny_params(dtype="bfloat16", max_steps=6)
    skills = tiny_data.skills
    result = train(p, tiny_model_dir, tiny_data.train, tiny_data.val, skills, tmp_path / "ckpt", callbacks=(Losses(),))
    weights = dict(result.model.named_parameters())
    assert {v.dtype for k, v in weights.items() if "lora_" in k} == {torch.float32}
    assert {v.dtype for k, v in weights.items() if "lora_" not in k} == {torch.bfloat16}
    assert len(losses) == 6 and all(map(math.isfinite, losses)) and losses[-1] < losses[0]
    assert result.metrics["dtype"] == "bfloat16"
    save_adapter(tmp_path / "adapter", result, skills, p)
    model, prompter, _ = load_trained(tmp_path / "adapter")
    assert model.dtype == torch.bfloat16
    assert len(generate(model, prompter, ["hi"], 1, max_new_tokens=4)) == 1


def test_resolve_dtype_keeps_names_and_decides_auto():
    assert resolve_dtype("float32") == "float32" and resolve_dtype("bfloat16") == "bfloat16"
    assert resolve_dtype("auto") in ("float32", "bfloat16")
    assert auto_dtype(True, set()) == "bfloat16" and auto_dtype(False, {"amx_bf16"}) == "bfloat16"
    assert auto_dtype(False, {"avx512f", "avx512bw"}) == "float32"  # AVX-512 without its bf16 part
