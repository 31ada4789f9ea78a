"""Training in bfloat16 vs float32 on this CPU: a matmul, then seconds per step of the default finetune.

    python benchmarks/dtype.py [--steps 20] [--base models/base]

First one 300x576 @ 576x1536 matmul (an MLP projection of a batch) in each dtype, then each dtype trains in its own
process with the finetune params of params.yaml, only ``max_steps`` and ``dtype`` changed; same data and seed.
``dtype: auto`` picks bfloat16 where the CPU has AVX512-BF16 or AMX (:func:`skillcall.models.auto_dtype`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import compare_variants, train_variant  # noqa: E402

DTYPES = ("bfloat16", "float32")


def matmul_gflops(dtype: str, repeats: int = 200) -> float:
    """GFLOP/s of one (300, 576) @ (576, 1536) matmul in ``dtype``, on the threads torch uses here."""
    import torch

    a = torch.randn(300, 576, dtype=getattr(torch, dtype))
    w = torch.randn(1536, 576, dtype=getattr(torch, dtype))
    for _ in range(5):
        a @ w.T
    start = time.perf_counter()
    for _ in range(repeats):
        a @ w.T
    return round(2 * 300 * 576 * 1536 * repeats / (time.perf_counter() - start) / 1e9, 1)


def one(args: argparse.Namespace, dtype: str) -> dict:
    """The matmul and ``args.steps`` training steps in ``dtype``; what ``dtype: auto`` is on this machine first."""
    from skillcall.models import resolve_dtype

    row = {"dtype": dtype, "auto_here": resolve_dtype("auto"), "matmul_gflops": matmul_gflops(dtype)}
    return {**row, **train_variant(args, dtype=dtype)}


def main() -> None:
    compare_variants(__doc__, __file__, DTYPES, one, steps=20)


if __name__ == "__main__":
    main()
