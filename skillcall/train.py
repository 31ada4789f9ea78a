"""LoRA / QLoRA supervised fine-tuning with a completion-only loss (trl SFTTrainer + peft).

Rows become ``{"prompt", "completion"}`` pairs rendered by the :class:`~skillcall.prompting.Prompter`
(the same texts inference uses), tokenised by ``Prompter.tokenize`` into ``input_ids`` and ``labels``
(-100 on the prompt), so only the answer and its end of turn are learned. We tokenise ourselves
rather than hand trl the strings because trl appends an EOS to string completions, which would
double ChatML's ``<|im_end|>``.

    >>> check_learnable([{"input_ids": [1, 2, 3], "labels": [-100, -100, 3]}], ["a.txt:1"], max_length=2)
    Traceback (most recent call last):
    ...
    skillcall.train.NoLearnableTokensError: a.txt:1: no answer token left to learn: the prompt is 2 tokens and max_length is 2; raise finetune.max_length or shorten the system prompt
"""

from __future__ import annotations

import hashlib
import json
import random
import resource
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from datasets import Dataset
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import TrainerCallback, set_seed
from transformers.trainer_utils import get_last_checkpoint
from trl import SFTConfig, SFTTrainer

from skillcall import distributed
from skillcall.calls import SPANNED_SHARE, calls_match, copied_params, never_first, never_inside, verbatim
from skillcall.dataset import Row, read_rows, spread
from skillcall.generation import generate, start_within
from skillcall.models import SKILLS_FILE, TRAINING_FILE, device, load_base, resolve_dtype
from skillcall.prompting import Prompter, PromptParams
from skillcall.skills import Skills

FINGERPRINT_FILE = "fingerprint.json"
METRIC_NAMES = {
    "loss": "train/loss",
    "learning_rate": "train/lr",
    "grad_norm": "train/grad_norm",
    "eval_loss": "val/loss",
}


class NoLearnableTokensError(ValueError):
    pass


@dataclass
class LoraParams:
    r: int
    alpha: int
    dropout: float
    target_modules: list[str]
    top_layers: int = 0  # LoRA only in the last N decoder layers (backward stops below them); 0 = every layer


@dataclass
class FinetuneParams:
    """The ``finetune:`` section of params.yaml (units and advice in its comments)."""

    quantization: str  # none | 4bit | 8bit
    dtype: str  # float32 | bfloat16 | auto (bfloat16 where the hardware has it natively)
    threads: int  # torch CPU threads per process; 0 = the cores shared out between the processes
    prompt: PromptParams
    lora: LoraParams
    seed: int
    max_steps: int
    batch_size: int
    grad_accum: int
    learning_rate: float
    lr_scheduler: str
    warmup_steps: int
    weight_decay: float
    max_length: int
    gradient_checkpointing: bool
    share_prefix: bool  # run the prompt prefix common to all examples once per batch
    prefix_grad: bool  # backpropagate through the shared prefix (False: its keys/values are constants)
    logging_steps: int
    save_steps: int
    eval_steps: int
    eval_batch_size: int
    sample_predictions: int
    max_new_tokens: int
    processes: int = 1  # data-parallel ranks (torchrun); global batch = batch_size * grad_accum * processes
    length_group: int = 1  # batches drawn together and sorted by length (less padding); 1 = plain random batches
    eval_rows: int = 0  # rows of the fixed val subset scored every eval_steps; 0 = all; the final val_loss uses all
    arithmetic_dropout: float = 0.0  # share of train rows shown without the arithmetic line (:func:`dropped`)


def file_sha256(paths: list[str | Path]) -> dict[str, str]:
    """``{"train": sha256, "val": sha256, "all": sha256 of both}`` keyed by file stem."""
    out = {Path(p).stem: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}
    out["all"] = hashlib.sha256("".join(f"{k}:{v}" for k, v in sorted(out.items())).encode()).hexdigest()
    return out


def dropped(user: str, share: float, seed: int) -> bool:
    """Whether a train row is one of the ``share`` of rows shown without the arithmetic line: a hash of the seed and
    the utterance, so the same rows in every run with that seed, whatever their order.

    >>> dropped("what's nine times nine", 0.0, 0), dropped("what's nine times nine", 1.0, 0)
    (False, True)
    >>> sum(dropped(f"row {i}", 0.5, 0) for i in range(1000))
    493
    """
    digest = hashlib.sha256(f"{seed}:{user}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def tokenize_rows(rows: list[Row], prompter: Prompter, arithmetic_dropout: float = 0.0, seed: int = 0) -> list[dict]:
    """``[{"input_ids", "labels"}]``: the prompt-completion pair of each row, labels -100 on the prompt.

    ``arithmetic_dropout``: that share of the rows (:func:`dropped`) is prompted without the arithmetic hint, so
    the model still learns to turn spoken arithmetic into an expression itself (word problems get no hint).
    """
    plain = replace(prompter, arithmetic=False)
    out = []
    for row in rows:
        chosen = plain if prompter.arithmetic and dropped(row.user, arithmetic_dropout, seed) else prompter
        input_ids, labels = chosen.tokenize(row.user, row.answer)
        out.append({"input_ids": input_ids, "labels": labels})
    return out


def check_learnable(examples: list[dict], where: list[str], max_length: int) -> None:
    """Raise :class:`NoLearnableTokensError` naming the row if truncation to ``max_length`` leaves no label.

    Every example keeps at least one learned token, so no batch can have all labels at -100.
    """
    for example, place in zip(examples, where, strict=True):
        if all(label == -100 for label in example["labels"][:max_length]):
            prompt_len = sum(1 for label in example["labels"] if label == -100)
            raise NoLearnableTokensError(
                f"{place}: no answer token left to learn: the prompt is {prompt_len} tokens and max_length is "
                f"{max_length}; raise finetune.max_length or shorten the system prompt"
            )


def shared_prefix_length(examples: list[dict]) -> int:
    """Leading tokens common to every example and not learned (the system prompt), for :class:`PrefixSharingTrainer`.

    The label right after the prefix is predicted from the prefix's last position, which the shared pass does not
    score, so the prefix stops at least one token before the first learned label.

    >>> shared_prefix_length([{"input_ids": [5, 6, 7, 8], "labels": [-100, -100, -100, 8]},
    ...                       {"input_ids": [5, 6, 9, 8], "labels": [-100, -100, -100, 8]}])
    2
    """
    first = examples[0]["input_ids"]
    shortest = min(len(e["input_ids"]) for e in examples)
    common = next((i for i in range(shortest) if any(e["input_ids"][i] != first[i] for e in examples)), shortest)
    first_label = min(next(i for i, label in enumerate(e["labels"]) if label != -100) for e in examples)
    return min(common, first_label - 1)


class PrefixSharingTrainer(SFTTrainer):
    """SFTTrainer that runs the prompt prefix shared by all examples (the system prompt) once per batch.

    Examples hold only the tokens after ``prefix_ids``. Each batch computes the prefix's keys/values once (with
    gradients through the LoRA weights), repeats them over the batch and runs the rest of every example on top.
    Loss and gradients equal those of the full sequences (tested); the work per example drops from ~236 to ~30
    tokens with the default system prompt. Not combinable with gradient checkpointing (the recomputation would
    append to the cache twice). ``prefix_grad=False`` computes the prefix without gradients: the loss is the same,
    the gradient lacks the prefix's share (LoRA still learns from every answer token), and a step costs less.
    The loss is :func:`learned_token_loss` with or without a prefix (equal to trl's own, tested).
    """

    def __init__(
        self, *args: Any, prefix_ids: list[int], prefix_grad: bool = True, length_group: int = 1, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.prefix_ids, self.prefix_grad, self.length_group = prefix_ids, prefix_grad, length_group

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> torch.utils.data.Sampler | None:
        if self.length_group <= 1:
            return super()._get_train_sampler(train_dataset)
        dataset = self.train_dataset if train_dataset is None else train_dataset
        lengths = [len(ids) for ids in dataset["input_ids"]]
        # grouped per global batch (all ranks' share of a step): the ranks split each sorted run, so 2 ranks x 8 draw
        # the same rows per step as 1 process x 16, and each rank's batch is still a slice of one sorted run
        batch = self.args.per_device_train_batch_size * self.args.world_size
        return LengthGroupedSampler(lengths, batch, self.length_group, self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("this trainer computes the loss only; set prediction_loss_only=True")
        if self.prefix_ids:
            ids, mask = inputs["input_ids"], inputs["attention_mask"]
            batch, n = ids.shape[0], len(self.prefix_ids)
            prefix = torch.tensor([self.prefix_ids], device=ids.device)
            with torch.set_grad_enabled(self.prefix_grad and torch.is_grad_enabled()):
                cache = model(input_ids=prefix, use_cache=True, logits_to_keep=1).cache
            cache.batch_repeat_interleave(batch)
            inputs = {
                **inputs,
                "cache": cache,
                "attention_mask": torch.cat([mask.new_ones(batch, n), mask], dim=1),
                "position_ids": n + torch.arange(ids.shape[1], device=ids.device).expand(batch, -1),
            }
        loss = learned_token_loss(model, inputs, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # num_items_in_batch counts every rank's tokens; DDP averages
        return loss


def learned_token_loss(model: Any, inputs: dict, num_items_in_batch: Any = None) -> torch.Tensor:
    """Cross-entropy summed over the learned tokens (``labels`` not -100) / their number (``num_items_in_batch``, the
    whole step's, when given). The head runs only at the positions that predict a learned token in some row (~half
    the suffix), not at every position (benchmarks/loss_head.py: 6.72 -> 5.38 s/step vs trl's chunked fused head).
    """
    targets = inputs["labels"][:, 1:]
    keep = (targets != -100).any(dim=0).nonzero().squeeze(1)
    logits = model(**{k: v for k, v in inputs.items() if k != "labels"}, use_cache=False, logits_to_keep=keep).logits
    targets = targets[:, keep]
    total = torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum"
    )
    count = (targets != -100).sum() if num_items_in_batch is None else num_items_in_batch
    return total / torch.as_tensor(count, device=total.device).clamp(min=1)


def length_grouped_order(lengths: list[int], batch: int, group: int, seed: int) -> list[int]:
    """All row indices, shuffled so that each run of ``batch`` holds rows of similar length (less padding).

    The rows are shuffled, cut into windows of ``group`` batches, sorted by length inside each window and cut into
    batches; then the full batches are shuffled (a short one stays last). A batch is still a random draw from its
    window, and no length order runs through training. ``group=1`` is a plain shuffle.

    >>> lengths = [9, 1, 9, 1, 9, 1, 9, 1]
    >>> order = length_grouped_order(lengths, batch=2, group=4, seed=0)
    >>> sorted(order) == list(range(8)), [len({lengths[i] for i in order[k : k + 2]}) for k in range(0, 8, 2)]
    (True, [1, 1, 1, 1])
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch * group
    batches = [
        chunk[b : b + batch]
        for w in range(0, len(order), window)
        for chunk in [sorted(order[w : w + window], key=lengths.__getitem__)]
        for b in range(0, len(chunk), batch)
    ]
    full, short = [b for b in batches if len(b) == batch], [b for b in batches if len(b) < batch]
    rng.shuffle(full)
    return [i for b in full + short for i in b]


class LengthGroupedSampler(torch.utils.data.Sampler):
    """:func:`length_grouped_order` as a sampler; a new order each epoch (seed + epoch)."""

    def __init__(self, lengths: list[int], batch: int, group: int, seed: int):
        self.lengths, self.batch, self.group, self.seed, self.epoch = lengths, batch, group, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        return iter(length_grouped_order(self.lengths, self.batch, self.group, self.seed + self.epoch))


def by_length(examples: list[dict]) -> list[dict]:
    """``examples`` shortest first: the val loss batches (taken in order) then hold similar lengths, little padding.

    >>> [e["input_ids"] for e in by_length([{"input_ids": [1, 2]}, {"input_ids": [3]}])]
    [[3], [1, 2]]
    """
    return sorted(examples, key=lambda e: len(e["input_ids"]))


def suffixes(examples: list[dict], n: int) -> Dataset:
    """The examples without their first ``n`` tokens (the shared prefix), as a trainer dataset."""
    return Dataset.from_list([{k: v[n:] for k, v in e.items()} for e in examples])


def top_layers(model: Any, n: int) -> list[int] | None:
    """Indices of the last ``n`` decoder layers of ``model`` (None = all, for ``n`` 0)."""
    total = model.config.get_text_config().num_hidden_layers
    if not 0 <= n <= total:
        raise ValueError(f"finetune.lora.top_layers must be 0..{total} (the model's layers), got {n}")
    return list(range(total - n, total)) if n else None


def lora_model(model: Any, p: FinetuneParams) -> Any:
    """Wrap ``model`` with fresh LoRA adapters (seeded); k-bit models are prepared for training first."""
    if p.quantization != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=p.gradient_checkpointing)
    set_seed(p.seed)
    config = LoraConfig(
        r=p.lora.r,
        lora_alpha=p.lora.alpha,
        lora_dropout=p.lora.dropout,
        target_modules=p.lora.target_modules,
        layers_to_transform=top_layers(model, p.lora.top_layers),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def sft_config(p: FinetuneParams, output_dir: str | Path, max_length: int) -> SFTConfig:
    """The trainer arguments; ``max_length`` counts the tokens after the shared prefix."""
    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=p.max_steps,
        per_device_train_batch_size=p.batch_size,
        per_device_eval_batch_size=p.eval_batch_size,
        gradient_accumulation_steps=p.grad_accum,
        learning_rate=p.learning_rate,
        lr_scheduler_type=p.lr_scheduler,
        warmup_steps=p.warmup_steps,
        weight_decay=p.weight_decay,
        max_length=max_length,
        completion_only_loss=True,
        prediction_loss_only=True,
        bf16=resolve_dtype(p.dtype) == "bfloat16",
        fp16=False,
        gradient_checkpointing=p.gradient_checkpointing,
        logging_steps=p.logging_steps,
        save_steps=p.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if p.eval_steps else "no",
        eval_steps=p.eval_steps or None,
        seed=p.seed,
        data_seed=p.seed,
        report_to=[],
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        use_cpu=device() == "cpu",  # also makes torchrun ranks on a CPU one gloo DDP group, not N trainings
        ddp_find_unused_parameters=False,  # every LoRA weight is used each step; saves a graph walk per step
    )


def log_step(run: Any, live: Any, logs: dict, step: int) -> None:
    """Send the trainer's ``logs`` (loss, lr, grad norm, val loss) to W&B and DVCLive at ``step``."""
    metrics = {METRIC_NAMES[k]: float(v) for k, v in logs.items() if k in METRIC_NAMES}
    if not metrics:
        return
    if run is not None:
        run.log(metrics, step=step)
    if live is not None:
        live.step = step
        for k, v in metrics.items():
            live.log_metric(k, v)
        live.next_step()


class MetricsCallback(TrainerCallback):
    """Calls :func:`log_step` at each logging step."""

    def __init__(self, run: Any, live: Any):
        self.run, self.live = run, live

    def on_log(self, args, state, control, logs=None, **kwargs):
        log_step(self.run, self.live, logs or {}, state.global_step)


def fingerprint(p: FinetuneParams, base_model: str, data_hash: dict[str, str]) -> dict:
    return {"params": asdict(p), "base_model": base_model, "data": data_hash}


def prepare_checkpoints(directory: Path, print_: Any, resume: bool, fp: dict) -> str | None:
    """The checkpoint to resume from (or None), after checking it was made with the same params and data.

    Without ``resume`` the folder is emptied so a fresh run never mixes with old checkpoints.
    """
    stored = directory / FINGERPRINT_FILE
    last = get_last_checkpoint(str(directory)) if resume and directory.is_dir() else None
    if last:
        if not stored.exists() or json.loads(stored.read_text()) != fp:
            raise ValueError(
                f"{directory}: its checkpoints were made with other params or data; rerun without --resume"
            )
        print_(f"finetune: resuming from {last}")
        return last
    if resume:
        print_(f"finetune: no checkpoint in {directory}; starting from scratch")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    stored.write_text(json.dumps(fp, indent=2) + "\n")
    return None


@dataclass
class TrainResult:
    model: Any
    tokenizer: Any
    prompter: Prompter
    metrics: dict
    samples: list[dict]  # greedy predictions on validation rows
    data_hash: dict[str, str]  # sha256 of the train/val files
    base_model: str  # the folder or hub id trained on


def train(
    p: FinetuneParams,
    base_model: str | Path,
    train_path: str | Path,
    val_path: str | Path,
    skills: Skills,
    checkpoints: str | Path,
    resume: bool = False,
    run: Any = None,
    live: Any = None,
    print_: Any = print,
    callbacks: tuple = (),
) -> TrainResult:
    """Fine-tune ``base_model`` (HF folder or hub id) on the train file; ``run``/``live`` get per-step metrics.

    ``callbacks``: extra transformers TrainerCallbacks (e.g. a step timer). Under torchrun every rank calls this
    with the same arguments; each trains on its share of every global batch, and only rank 0 prints and generates
    the sample predictions (pass ``run``/``live`` on rank 0 only).
    """
    if p.share_prefix and p.gradient_checkpointing:
        raise ValueError("finetune.share_prefix and finetune.gradient_checkpointing cannot both be true")
    if not 0.0 <= p.arithmetic_dropout <= 1.0:
        raise ValueError(f"finetune.arithmetic_dropout is a share of rows in [0, 1], got {p.arithmetic_dropout}")
    # joins the torchrun group (gloo on a CPU, nccl on GPUs) and picks this rank's GPU before the model is loaded
    state = PartialState(cpu=device() == "cpu")
    main = state.is_main_process
    print_ = print_ if main else lambda *_: None
    if p.threads or state.num_processes > 1:
        torch.set_num_threads(distributed.threads_per_process(p.threads, distributed.cores(), state.num_processes))
    start = time.time()
    train_rows, val_rows = read_rows(train_path), read_rows(val_path)
    model, tokenizer = load_base(str(base_model), p.quantization, p.dtype)
    said = [(r.user, r.answer) for r in train_rows]  # which values are the user's words, for decoding
    copied = copied_params(said, skills)
    spanned = copied_params(said, skills, SPANNED_SHARE, verbatim) if p.prompt.spans else ()
    never = never_first(said, spanned)
    prompter = replace(
        Prompter.build(p.prompt, skills, tokenizer),
        copied=copied,
        spanned=spanned,
        never_first=never,
        start_within=start_within(said, never),
        never_inside=never_inside(said, spanned),
    )
    train_examples = tokenize_rows(train_rows, prompter, p.arithmetic_dropout, p.seed)
    val_examples = tokenize_rows(val_rows, prompter)
    check_learnable(train_examples, [r.file for r in train_rows], p.max_length)
    check_learnable(val_examples, [r.file for r in val_rows], p.max_length)
    n = shared_prefix_length(train_examples + val_examples) if p.share_prefix else 0
    lengths = [len(e["input_ids"]) for e in train_examples]
    print_(
        f"finetune: {len(train_rows)} train / {len(val_rows)} val rows, {sum(lengths) / len(lengths):.0f} tokens per "
        f"example (max {max(lengths)}; the first {n}, shared by all, run once per batch), "
        f"{p.max_steps} steps of {p.batch_size * p.grad_accum * state.num_processes} on {state.num_processes} "
        f"process(es) x {torch.get_num_threads()} threads"
    )
    model = lora_model(model, p)
    data_hash = file_sha256([train_path, val_path])
    args = sft_config(p, checkpoints, max_length=p.max_length - n)
    with args.main_process_first(local=False, desc="checkpoint folder"):  # rank 0 empties it, then the others look
        if main:
            last = prepare_checkpoints(Path(checkpoints), print_, resume, fingerprint(p, str(base_model), data_hash))
        else:
            last = get_last_checkpoint(str(checkpoints)) if resume else None
    trainer = PrefixSharingTrainer(
        model=model,
        args=args,
        train_dataset=suffixes(train_examples, n),
        eval_dataset=suffixes(by_length(spread(val_examples, p.eval_rows)), n),
        processing_class=tokenizer,
        callbacks=[MetricsCallback(run, live), *callbacks],
        prefix_ids=train_examples[0]["input_ids"][:n],
        prefix_grad=p.prefix_grad,
        length_group=p.length_group,
    )
    train_start = time.time()
    output = trainer.train(resume_from_checkpoint=last)
    train_seconds = time.time() - train_start
    # the whole val split, logged as "final_loss" (not "val/loss": the curve holds the fixed subset only)
    val = trainer.evaluate(suffixes(by_length(val_examples), n), metric_key_prefix="final")
    samples = sample_predictions(
        model, prompter, val_rows[: p.sample_predictions] if main else [], skills, p.max_new_tokens
    )
    steps, world = trainer.state.global_step, args.world_size
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = {
        "train_loss": losses[-1] if losses else output.training_loss,  # the last logged (mean of logging_steps)
        "val_loss": val["final_loss"],
        "steps": steps,
        "examples_per_step": p.batch_size * p.grad_accum * world,
        "tokens_per_example": round(sum(lengths) / len(lengths), 1),
        "shared_prefix_tokens": n,
        "tokens": int(trainer.state.num_input_tokens_seen) + n * steps * p.grad_accum * world,  # through the model
        "train_seconds": round(train_seconds, 1),
        "seconds_per_step": round(train_seconds / max(1, steps), 2),
        "seconds": round(time.time() - start, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),  # of rank 0
        "processes": world,
        "trainable_params": sum(x.numel() for x in model.parameters() if x.requires_grad),
        "threads": torch.get_num_threads(),
        "dtype": str(model.dtype).removeprefix("torch."),  # what finetune.dtype (auto) was on this machine
        "sample_accuracy": sum(s["correct"] for s in samples) / len(samples) if samples else None,
    }
    return TrainResult(model, tokenizer, prompter, metrics, samples, data_hash, str(base_model))


def sample_predictions(
    model: Any, prompter: Prompter, rows: list[Row], skills: Skills, max_new_tokens: int
) -> list[dict]:
    """Greedy predictions on ``rows``: ``[{"utterance", "gold", "prediction", "correct"}]``."""
    model.eval()
    generations = generate(model, prompter, [r.user for r in rows], len(rows) or 1, max_new_tokens)
    return [
        {"utterance": r.user, "gold": r.answer, "prediction": g.text, "correct": calls_match(g.text, r.answer, skills)}
        for r, g in zip(rows, generations, strict=True)
    ]


def save_adapter(out_dir: str | Path, result: TrainResult, skills: Skills, p: FinetuneParams) -> None:
    """Everything needed to use the adapter alone: weights, tokenizer + template, prompt, skills, params, data hash."""
    out = Path(out_dir)
    shutil.rmtree(out, ignore_errors=True)
    result.model.save_pretrained(out)
    result.tokenizer.save_pretrained(out)
    result.prompter.save(out)
    (out / SKILLS_FILE).write_text(json.dumps([s.to_dict() for s in skills.values()], indent=2) + "\n")
    training = {
        "base_model": result.base_model,
        "params": asdict(p),
        "dataset_sha256": result.data_hash,
        "metrics": result.metrics,
    }
    (out / TRAINING_FILE).write_text(json.dumps(training, indent=2) + "\n")
