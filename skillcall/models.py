"""Loading models: the one place weights are read (base, base + adapter, merged export, GGUF file).

A ``.gguf`` path (``models/export/skillcall-q8_0.gguf``) loads through transformers (``gguf_file=``, dequantised to
fp32); its folder holds the export's prompt config, skills and training record, like a merged folder.

Owns the adapter folder's file names and metadata readers; quantisation (bitsandbytes) checks.

    >>> device() in ("cpu", "cuda")
    True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from skillcall.prompting import Prompter
from skillcall.skills import Skills, parse_signature

QUANTIZATIONS = ("none", "4bit", "8bit")
TRAINING_FILE = "training.json"  # in an adapter folder: base model, params, dataset hash, metrics
SKILLS_FILE = "skills.json"  # in an adapter folder: the skill specs it was trained on
ADAPTER_CONFIG = "adapter_config.json"  # peft's: an adapter folder has it, a merged export (skillcall.export) not


class QuantizationError(RuntimeError):
    pass


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def auto_dtype(cuda_bf16: bool, cpu_flags: set[str]) -> str:
    """The dtype ``dtype: auto`` means: bfloat16 where the hardware multiplies it natively (a CUDA GPU with bf16, a
    CPU with AVX512-BF16 or AMX: ~4x the fp32 matmul speed on this repository's 2-core EPYC), else float32 (without bf16
    instructions the gain is gone; not measured here).

    >>> auto_dtype(False, {"avx2", "avx512f", "avx512_bf16"}), auto_dtype(False, {"avx2", "avx512f"})
    ('bfloat16', 'float32')
    """
    return "bfloat16" if cuda_bf16 or cpu_flags & {"avx512_bf16", "amx_bf16"} else "float32"


def resolve_dtype(dtype: str) -> str:
    """``finetune.dtype`` as a torch dtype name: ``"auto"`` is decided for this machine (:func:`auto_dtype`; the CPU
    flags come from /proc/cpuinfo, so auto is float32 on a CPU elsewhere), any other name is returned as it is."""
    if dtype != "auto":
        return dtype
    if torch.cuda.is_available():
        return auto_dtype(torch.cuda.is_bf16_supported(), set())
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text().partition("\nflags")[2].partition("\n")[0] if cpuinfo.is_file() else ""
    return auto_dtype(False, set(flags.split()))


def check_quantization(quantization: str) -> None:
    """Run a tiny quantised layer forward and backward on this device; raise a clear error if a piece fails.

    bitsandbytes 0.50 has a CPU backend for both 4-bit (NF4) and 8-bit; older builds need CUDA.
    """
    if quantization not in QUANTIZATIONS:
        raise QuantizationError(
            f"finetune.quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}"
        )
    if quantization == "none":
        return
    try:
        import bitsandbytes as bnb
    except ImportError as e:
        raise QuantizationError(f"finetune.quantization={quantization} needs bitsandbytes: {e}") from None
    dev = device()
    step = "quantising a layer"
    try:
        if quantization == "4bit":
            layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4").to(dev)
        else:
            layer = bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False).to(dev)
        x = torch.randn(2, 64, device=dev, requires_grad=True)
        step = "the forward pass"
        y = layer(x)
        step = "the backward pass"
        y.sum().backward()
    except Exception as e:  # noqa: BLE001 - any failure here means this device cannot train quantised
        raise QuantizationError(
            f"finetune.quantization={quantization}: bitsandbytes {bnb.__version__} failed in {step} of a {quantization} "
            f"layer on {dev} ({type(e).__name__}: {e}); this piece needs CUDA here: use quantization: none or a GPU"
        ) from None


def load_base(name: str, quantization: str = "none", dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) of a local HF folder or hub id; 4/8-bit through bitsandbytes (NF4 for 4-bit)."""
    check_quantization(quantization)
    torch_dtype = getattr(torch, resolve_dtype(dtype))
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if quantization == "4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch_dtype
        )
    elif quantization == "8bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    if quantization != "none":
        kwargs["device_map"] = {"": device()}
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    if quantization == "none":
        model.to(device())
    return model, tokenizer


def is_gguf(name: str | Path) -> bool:
    """``models/export/skillcall-q8_0.gguf`` -> True.

    >>> is_gguf("models/export/skillcall-q8_0.gguf"), is_gguf("models/base")
    (True, False)
    """
    return str(name).endswith(".gguf")


def model_folder(name: str | Path) -> Path:
    """The folder with a model's prompt config and skills: the folder itself, or a GGUF file's folder.

    >>> str(model_folder("models/export/skillcall-f16.gguf"))
    'models/export'
    """
    return Path(name).parent if is_gguf(name) else Path(name)


def load_tokenizer(name: str | Path) -> Any:
    """The tokenizer of an HF folder / hub id, or the one embedded in a GGUF file."""
    if is_gguf(name):
        return AutoTokenizer.from_pretrained(Path(name).parent, gguf_file=Path(name).name)
    return AutoTokenizer.from_pretrained(name)


def load_model(name: str | Path, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) of an HF folder / hub id (:func:`load_base`) or a GGUF file (dequantised to ``dtype``).

    transformers marks a GGUF-loaded model as quantised although its tensors are plain: the marks are cleared so it
    merges, saves and generates like any model.
    """
    if not is_gguf(name):
        return load_base(str(name), "none", dtype)
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such GGUF file; run the export stage (models/export)")
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=getattr(torch, resolve_dtype(dtype))
    )
    model.hf_quantizer, model.is_quantized = None, False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model.to(device()), load_tokenizer(path)


def adapter_skills(adapter_dir: str | Path) -> Skills:
    """The skill specs saved with an adapter (``skills.json``), without loading the model."""
    path = model_folder(adapter_dir) / SKILLS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; is {adapter_dir} a folder written by the finetune stage?")
    specs = json.loads(path.read_text(encoding="utf-8"))
    return {s["name"]: parse_signature(f"{s['signature']} {s['description']}", f"{path}") for s in specs}


def adapter_metadata(adapter_dir: str | Path) -> dict:
    """The W&B model artifact's metadata, read from the adapter folder: the same for the finetune run that logs
    the artifact and the eval run that uses it."""
    d = Path(adapter_dir)
    training = json.loads((d / TRAINING_FILE).read_text())
    return {
        "base_model": training["base_model"],
        "prompt_mode": training["params"]["prompt"]["mode"],
        "skills": [s["signature"] for s in json.loads((d / SKILLS_FILE).read_text())],
        "dataset_sha256": training["dataset_sha256"]["all"],
        "metrics": training["metrics"],
    }


def load_trained(adapter_dir: str | Path, base_model: str | None = None) -> tuple[Any, Prompter, Skills]:
    """(model with the adapter, prompter, skills) from a folder written by :func:`save_adapter`.

    The base is the one it was trained on (``training.json``) unless ``base_model`` names another copy.
    A merged folder written by ``skillcall.export``, or a GGUF file of the export stage (its folder holds the
    prompt and skills), loads as a plain model (its weights hold the adapter).
    """
    d = model_folder(adapter_dir)
    training = json.loads((d / TRAINING_FILE).read_text())
    params = training["params"]
    if is_gguf(adapter_dir):
        if base_model:
            raise ValueError(f"{adapter_dir} is a merged GGUF: a base model does not apply to it")
        model, tokenizer = load_model(adapter_dir, params["dtype"])
        model.eval()
        return model, Prompter.load(d, tokenizer), adapter_skills(d)
    if (d / ADAPTER_CONFIG).exists():
        model, _ = load_base(base_model or training["base_model"], params["quantization"], params["dtype"])
        model = PeftModel.from_pretrained(model, d)
    elif base_model:
        raise ValueError(f"{d} is a merged model (no {ADAPTER_CONFIG}): a base model does not apply to it")
    else:
        model, _ = load_base(str(d), "none", params["dtype"])
    model.eval()
    return model, Prompter.load(d, AutoTokenizer.from_pretrained(d)), adapter_skills(d)


def merge_adapter(model: Any) -> Any:
    """Fold LoRA into the weights (no extra matmuls per layer at inference); quantised bases keep the adapter,
    a model without one (a merged export) is returned as it is."""
    if getattr(model, "is_quantized", False) or not hasattr(model, "merge_and_unload"):
        return model
    return model.merge_and_unload()
