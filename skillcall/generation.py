"""Batched greedy generation: shared-prefix KV cache, left padding, stopping at the end of the turn.

Used by eval, predict, train's sample predictions and the export check; knows nothing of scoring.

    >>> common_prefix_len([[1, 2, 3], [1, 2, 4, 5]])
    2
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from skillcall.calls import could_start_call
from skillcall.prompting import Prompter


@dataclass(frozen=True)
class Generation:
    text: str  # the model's answer: decoded, cut at the end of the turn
    latency_ms: float  # (its batch's wall time + a share of the prefix's) / batch size


def common_prefix_len(seqs: list[list[int]]) -> int:
    """Length of the token prefix shared by every sequence, leaving at least one token in each.

    >>> common_prefix_len([[1, 2, 3], [1, 2, 4, 5]])
    2
    >>> common_prefix_len([[1, 2], [1, 2]])
    1
    """
    n, shortest = 0, min(map(len, seqs))
    while n < shortest - 1 and all(s[n] == seqs[0][n] for s in seqs):
        n += 1
    return n


def stopping_criteria(tokenizer: Any, prompt_len: int, stops: list[str]) -> Any:
    """Stop each sequence once its generated text contains one of ``stops`` (end of turn, newline)
    or its first line can no longer become a call (the base model's prose: scoring reads only the
    first line, so this changes no metric but ``lenient_accuracy`` of text after the prose starts).

    Works for stops that span several tokens (``</s>`` in a raw prompt), which ``eos_token_id`` cannot.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            texts = tokenizer.batch_decode(input_ids[:, prompt_len:])
            words = tokenizer.batch_decode(input_ids[:, prompt_len:], skip_special_tokens=True)
            done = [any(s in t for s in stops) or not could_start_call(w) for t, w in zip(texts, words, strict=True)]
            return torch.tensor(done, device=input_ids.device)

    return StoppingCriteriaList([StopOnText()])


def prefill(model: Any, ids: list[int]) -> Any:
    """The KV cache of ``ids`` (batch 1): computed once, reused by every batch that starts with them."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        model(input_ids=torch.tensor([ids], device=model.device), cache=cache, use_cache=True)
    return cache


def generate_batch(
    model: Any, prompter: Prompter, prompts: list[list[int]], prefix_len: int, cache: Any, max_new_tokens: int
) -> list[str]:
    """Greedy answers for one batch of tokenised prompts, each stopped at the end of the turn or a newline.

    The first ``prefix_len`` tokens (shared by every prompt) come from ``cache``; the rest is padded
    on its left, so a row reads ``[prefix][pad ...][own tokens]``. Position ids follow the attention
    mask (transformers derives them from it), so padding does not shift any token's position.
    With ``prefix_len == 0`` this is plain left padding.
    """
    import copy

    import torch

    tokenizer = prompter.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prefix, width = prompts[0][:prefix_len], max(len(p) for p in prompts) - prefix_len
    rows, mask = [], []
    for p in prompts:
        own = p[prefix_len:]
        rows.append(prefix + [pad] * (width - len(own)) + own)
        mask.append([1] * prefix_len + [0] * (width - len(own)) + [1] * len(own))
    input_ids = torch.tensor(rows, device=model.device)
    kwargs = {}
    if prefix_len:
        kwargs["cache"] = copy.deepcopy(cache)
        kwargs["cache"].batch_repeat_interleave(len(prompts))
    stops = [s for s in (prompter.end_of_turn, tokenizer.eos_token, "\n") if s]
    with torch.inference_mode():
        ids = model.generate(
            input_ids=input_ids,
            attention_mask=torch.tensor(mask, device=model.device),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            stopping_criteria=stopping_criteria(tokenizer, input_ids.shape[1], stops),
            **kwargs,
        )
    texts = tokenizer.batch_decode(ids[:, input_ids.shape[1] :])
    return [prompter.answer_from(t.split(tokenizer.eos_token)[0]) for t in texts]


def generate(
    model: Any,
    prompter: Prompter,
    users: list[str],
    batch_size: int,
    max_new_tokens: int,
    share_prefix: bool = True,
    progress: str | None = None,
) -> list[Generation]:
    """Greedy answers for ``users``, in input order.

    Batches group prompts of similar length (little padding). With ``share_prefix`` the tokens every
    prompt starts with (the system prompt: ~90% of a prompt here) are run through the model once
    and their KV cache is reused by every batch. ``batch_size=1, share_prefix=False`` is the
    unbatched reference: one plain ``generate`` call per utterance. ``progress``: a label for a progress
    bar on stderr (utterances done), None for none.
    """
    tokenizer = prompter.tokenizer
    began = time.perf_counter()
    prompts = [tokenizer(prompter.prompt(u), add_special_tokens=False)["input_ids"] for u in users]
    prefix_len = common_prefix_len(prompts) if share_prefix and prompts else 0
    cache = prefill(model, prompts[0][:prefix_len]) if prefix_len else None
    shared_ms = (time.perf_counter() - began) * 1000 / max(len(users), 1)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[Generation | None] = [None] * len(users)
    bar = tqdm(total=len(users), desc=progress, unit="utt", disable=progress is None, file=sys.stderr, mininterval=2)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        began = time.perf_counter()
        texts = generate_batch(model, prompter, [prompts[i] for i in chunk], prefix_len, cache, max_new_tokens)
        latency_ms = shared_ms + (time.perf_counter() - began) * 1000 / len(chunk)
        for i, text in zip(chunk, texts, strict=True):
            out[i] = Generation(text, latency_ms)
        bar.update(len(chunk))
    bar.close()
    return out  # type: ignore[return-value]
