"""Shared fixtures: a tiny random Llama with the real SmolLM2 tokenizer, an isolated offline W&B, a tiny dataset."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from skillcall.dataset import Row, write_jsonl
from skillcall.examples import load_skills
from skillcall.skills import Skills

TINY_EXAMPLES = {
    "weather.txt": """#### Prompt:
weather(location="[location]") ask for the weather at a location. If there's no location it is where the user is.

#### Prompt Examples:

### User: How hot is it in Lisbon
### Assistant: weather(location="Lisbon")
""",
    "timer.txt": """#### Prompt:
timer(duration="[duration]") set a timer. The duration is written out, e.g. "10 minutes".

#### Prompt Examples:

### User: set a timer for ten minutes
### Assistant: timer(duration="10 minutes")
""",
    "other.txt": """#### Prompt:
other() anything that is not a request to one of the skills above.

#### Prompt Examples:

### User: thank you
### Assistant: other()
""",
}

TINY_TRAIN = [
    ("how hot is it in Lisbon", 'weather(location="Lisbon")'),
    ("what's the weather in Berlin", 'weather(location="Berlin")'),
    ("is it raining in Oslo", 'weather(location="Oslo")'),
    ("do I need an umbrella today", "weather()"),
    ("set a timer for ten minutes", 'timer(duration="10 minutes")'),
    ("timer for five minutes please", 'timer(duration="5 minutes")'),
    ("wake me in one hour", 'timer(duration="1 hour")'),
    ("thank you", "other()"),
    ("I had a long day", "other()"),
    ("hmm yeah", "other()"),
]
TINY_VAL = [
    ("weather in Paris", 'weather(location="Paris")'),
    ("a timer for two minutes", 'timer(duration="2 minutes")'),
    ("good night", "other()"),
]


@dataclass
class TinyData:
    examples_dir: Path
    train: Path
    val: Path
    skills: Skills

    @property
    def train_rows(self) -> list[Row]:
        return _rows(TINY_TRAIN)


def _rows(pairs: list[tuple[str, str]]) -> list[Row]:
    return [Row(u, a, a.split("(")[0], "hand", f"tiny:{i + 1}") for i, (u, a) in enumerate(pairs)]


@pytest.fixture
def tiny_data(tmp_path: Path) -> TinyData:
    """Three skill files in ``tmp_path/examples`` and train/val JSONL built from hand-written pairs."""
    examples = tmp_path / "examples"
    examples.mkdir()
    for name, text in TINY_EXAMPLES.items():
        (examples / name).write_text(text)
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", _rows(TINY_TRAIN))
    write_jsonl(data / "val.jsonl", _rows(TINY_VAL))
    return TinyData(examples, data / "train.jsonl", data / "val.jsonl", load_skills(examples))


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The real SmolLM2 tokenizer and chat template, read once per session from the packaged GGUF (~5 s)."""
    from skillcall.base import load_gguf_tokenizer

    return load_gguf_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_tokenizer) -> Path:
    """A saved HF folder: random 2-layer Llama shaped like SmolLM2 (hidden 64, vocab 49152) + the real tokenizer."""
    import torch
    from transformers import AutoConfig, LlamaForCausalLM

    from skillcall.base import gguf_path

    path = gguf_path()
    config = AutoConfig.from_pretrained(path.parent, gguf_file=path.name)
    config.update(
        {
            "num_hidden_layers": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 512,
        }
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # init zeroes the pad row, and pad = <|im_end|>: its logit would stay 0, unlearnable by LoRA
        model.get_input_embeddings().weight[config.pad_token_id].normal_(0.0, config.initializer_range)
    out = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(out)
    tokenizer = copy.deepcopy(smollm2_tokenizer)  # the session's tokenizer keeps its own max length
    tokenizer.model_max_length = config.max_position_embeddings
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Offline W&B writing only under ``tmp_path`` (runs, artifact staging, cache, settings). Returns WANDB_DIR.

    wandb reads these variables once per process (``wandb.setup``): torn down before and after, so each test's
    runs land in its own folder.
    """
    import wandb

    wandb.teardown()
    root = tmp_path / "wandb_home"
    for var, sub in [
        ("WANDB_DIR", "runs"),
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_ARTIFACT_DIR", "artifacts"),
        ("HOME", "home"),
    ]:
        (root / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    yield root / "runs"
    wandb.teardown()
