"""The training loss's LM head: trl's chunked fused head (log-probs, entropy and top-1 of every scored position,
in tiles) vs ``skillcall.train.learned_token_loss`` (the head at the positions that predict a learned token, one
cross-entropy), seconds per step.

    python benchmarks/loss_head.py [--steps 8] [--base models/base]

Each way trains in its own process with the finetune params of params.yaml (only ``max_steps`` changed), same
data and seed; the final losses should agree to float precision (same loss, different arithmetic order).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import compare_variants, train_variant  # noqa: E402

WAYS = ("trl", "own")


def trl_fused_loss(model, inputs: dict, num_items_in_batch=None):
    """What trl's ``SFTTrainer.compute_loss`` does by default (the loss the finetune stage used before)."""
    import torch

    out = model(**inputs, use_cache=False, fused_lm_head=True)
    count = out.label_mask.sum() if num_items_in_batch is None else num_items_in_batch
    return -out.log_probs.sum() / torch.as_tensor(count, device=out.log_probs.device).clamp(min=1)


def one(args: argparse.Namespace, way: str) -> dict:
    """``args.steps`` training steps with the loss of ``way``."""
    if way == "trl":
        import skillcall.train

        skillcall.train.learned_token_loss = trl_fused_loss
    return {"loss_head": way, **train_variant(args)}


def main() -> None:
    compare_variants(__doc__, __file__, WAYS, one, steps=8)


if __name__ == "__main__":
    main()
