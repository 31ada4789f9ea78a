"""One place that turns (utterance, answer) into model text, for training and inference alike.

Two modes. ``chat`` renders the tokenizer's chat template with a system prompt listing the skills;
``raw`` fills a prompt file holding ``{system}`` (optional), ``{user}`` and ``{answer}``, such as
``prompts/llama2.txt``. Either way ``prompt(user)`` is the exact inference text, ending where the
answer starts, and ``completion(answer)`` is what follows it: the answer plus the end of the turn.

    >>> p = Prompter("raw", "SYS", tokenizer=None, raw_template="[INST] {system} {user} [/INST] {answer} </s>")
    >>> p.prompt("hi"), p.completion("other()")
    ('[INST] SYS hi [/INST]', ' other() </s>')
    >>> p.answer_from(' other() </s> [INST]')
    'other()'
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillcall.addressee import addressee as said_to
from skillcall.arithmetic import arithmetic as expression
from skillcall.durations import duration
from skillcall.numbers import spoken_numbers
from skillcall.places import place
from skillcall.skills import OTHER, Skills

MODES = ("chat", "raw")
CONFIG_FILE = "prompt_config.json"
SYSTEM_FILE = "system_prompt.txt"
RAW_FILE = "prompt_template.txt"
_DUMMY_USER = "hello"  # any utterance: the completion does not depend on it


SAID = (
    "copied",
    "spanned",
    "never_first",
    "start_within",
    "never_inside",
)  # what the Prompter knows for the copy bias and the span constraint
BIASES = ("other_bias", "copy_bias")  # the Prompter's decoding offsets (nats) that eval and predict may override
# the lines the Prompter appends to the user text (:func:`with_hints`)
HINTS = ("numbers", "arithmetic", "durations", "addressee", "places")


def hints_of(source: Any) -> dict[str, bool]:
    """The :data:`HINTS` flags of a Prompter or PromptParams, by name."""
    return {name: getattr(source, name) for name in HINTS}


class PromptError(ValueError):
    pass


@dataclass
class PromptParams:
    mode: str = "chat"  # "chat" | "raw"
    system_template: str = "prompts/system.txt"  # has one {skills} or {names} placeholder
    raw_template: str = "prompts/llama2.txt"  # used when mode == "raw"; {system}, {user}, {answer}
    numbers: bool = False  # append the numbers the utterance says, in digits, to it ("...\n(numbers: 200, 63)")
    arithmetic: bool = False  # append the expression of plain arithmetic ("...\n(math: 640/32)")
    durations: bool = False  # append the length of time it says, as the timer takes it ("...\n(duration: 1 hour)")
    addressee: bool = False  # append the person in the room it is said to, if any ("mike what's ...\n(said to: mike)")
    places: bool = False  # append the place it names, as an atlas spells it ("kwala lumpur ...\n(place: Kuala Lumpur)")
    other_bias: float = 0.0  # logit (nats) taken from other()'s first token at the answer's first step, at inference
    copy_bias: float = 0.0  # logit (nats) added to the utterance's own words inside a copied argument, at inference
    spans: bool = False  # at inference, a spanned argument (a piece of the utterance in 95%+ of train) is only that


def with_hints(
    user: str,
    numbers: bool = False,
    arithmetic: bool = False,
    durations: bool = False,
    addressee: bool = False,
    places: bool = False,
) -> str:
    """``user`` with a line for each hint that is on and has something to say, each read from ``user`` alone:
    the numbers said, in digits (:func:`skillcall.numbers.spoken_numbers`), the expression of plain arithmetic
    (:func:`skillcall.arithmetic.arithmetic`), the length of time it says (:func:`skillcall.durations.duration`),
    the person in the room it is said to
    (:func:`skillcall.addressee.addressee`), the place it names (:func:`skillcall.places.place`).

    >>> with_hints("what's six hundred and forty over thirty two", numbers=True, arithmetic=True)
    "what's six hundred and forty over thirty two\\n(numbers: 640, 32)\\n(math: 640/32)"
    >>> with_hints("is it twelve degrees in oslo mum", numbers=True, arithmetic=True, addressee=True)
    'is it twelve degrees in oslo mum\\n(numbers: 12)\\n(said to: mum)'
    >>> with_hints("an hour and twenty minutes on the roast", numbers=True, durations=True)
    'an hour and twenty minutes on the roast\\n(numbers: 20)\\n(duration: 1 hour 20 minutes)'
    """
    lines = [user]
    if numbers and (said := spoken_numbers(user)):
        lines.append(f"(numbers: {', '.join(said)})")
    if arithmetic and (expr := expression(user)):
        lines.append(f"(math: {expr})")
    if durations and (length := duration(user)):
        lines.append(f"(duration: {length})")
    if addressee and (person := said_to(user)):
        lines.append(f"(said to: {person})")
    if places and (named := place(user)):
        lines.append(f"(place: {named})")
    return "\n".join(lines)


def short_description(description: str) -> str:
    """The first sentence of a skill description, without parentheses.

    >>> short_description("ask an AI a question (facts, advice). The prompt is the question.")
    'ask an AI a question.'
    """
    first = re.split(r"(?<=\.)\s", description.strip(), maxsplit=1)[0]
    return re.sub(r"\s*\([^)]*\)", "", first)


def render_system_prompt(skills: Skills, template_text: str) -> str:
    """Fill ``{skills}`` with one line per skill (signature and the first sentence of its description), or
    ``{names}`` with the skill names: a prompt ~4x shorter, so ~40% faster training steps on a CPU.

    >>> from skillcall.skills import parse_signature
    >>> s = parse_signature('timer(duration="[duration]") set a timer. The duration is written out.')
    >>> render_system_prompt({"timer": s}, "Skills:\\n{skills}")
    'Skills:\\ntimer(duration="[duration]"): set a timer.'
    >>> render_system_prompt({"timer": s, "other": s}, "One call of a skill: {names}.")
    'One call of a skill: timer, other.'
    """
    if template_text.count("{skills}") + template_text.count("{names}") != 1:
        raise PromptError("the system prompt template needs exactly one placeholder: {skills} or {names}")
    lines = [f"{s.signature}: {short_description(s.description)}".rstrip(": ") for s in skills.values()]
    text = template_text.replace("{skills}", "\n".join(lines)).replace("{names}", ", ".join(skills))
    return text.strip()


def read_raw_template(path: str | Path) -> str:
    """A raw prompt file; one trailing newline (an editor's) is not part of the format."""
    text = Path(path).read_text(encoding="utf-8").removesuffix("\n")
    check_raw_template(text, str(path))
    return text


def check_raw_template(text: str, where: str = "raw template") -> None:
    for name in ("user", "answer"):
        if text.count(f"{{{name}}}") != 1:
            raise PromptError(f"{where}: needs exactly one {{{name}}} placeholder")
    if text.index("{user}") > text.index("{answer}"):
        raise PromptError(f"{where}: {{user}} must come before {{answer}}")


# chat formats and a marker that only their prompts / chat templates contain; the first match wins
FAMILIES = {
    "chatml": "<|im_start|>",  # SmolLM2, Qwen (prompts/chatml.txt)
    "llama3": "<|start_header_id|>",
    "gemma": "<start_of_turn>",
    "llama2": "<<SYS>>",  # Llama-2-chat (prompts/llama2.txt); before mistral: both use [INST]
    "mistral": "[INST]",  # Mistral/Mixtral instruct (prompts/mistral.txt)
}


def prompt_family(text: str | None) -> str | None:
    """The chat format a prompt file or a chat template is written in, from its markers; None if unknown.

    >>> prompt_family("<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {answer} </s>")
    'llama2'
    >>> prompt_family("Q: {user}\\nA: {answer}") is None
    True
    """
    return next((family for family, marker in FAMILIES.items() if text and marker in text), None)


@dataclass
class Prompter:
    """Renders prompts/completions; ``tokenizer`` is needed for chat mode and for tokenising."""

    mode: str
    system: str  # the rendered system prompt
    tokenizer: Any = None
    raw_template: str | None = None  # the text of the raw prompt file (raw mode)
    numbers: bool = False  # the user text gets the numbers it says in digits (:func:`with_hints`)
    arithmetic: bool = False  # ... the expression it asks for, when it is plain arithmetic
    durations: bool = False  # ... the length of time it says, as the timer takes it
    addressee: bool = False  # ... the person in the room it is said to
    places: bool = False  # ... and the place it names, as an atlas spells it
    other_bias: float = 0.0  # decoding: subtracted from other()'s first-token logit (:mod:`skillcall.generation`)
    copy_bias: float = 0.0  # decoding: added to the utterance's words inside the value of a ``copied`` parameter
    copied: tuple[str, ...] = ()  # "skill.param" names whose values are words the user said (calls.copied_params)
    spanned: tuple[str, ...] = ()  # ... whose values are only a piece of the utterance as said (SpanConstraint)
    never_first: dict[str, tuple[str, ...]] = field(default_factory=dict)  # spanned -> words no value starts with
    start_within: dict[str, int] = field(
        default_factory=dict
    )  # spanned -> how many of its first places a value starts at
    never_inside: dict[str, tuple[str, ...]] = field(default_factory=dict)  # spanned -> words no value holds

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PromptError(f"prompt mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "raw":
            if self.raw_template is None:
                raise PromptError("raw mode needs a raw_template")
            check_raw_template(self.raw_template)
        elif self.tokenizer is None or not getattr(self.tokenizer, "chat_template", None):
            raise PromptError("chat mode needs a tokenizer with a chat template (or use mode: raw with a prompt file)")

    @property
    def family(self) -> str | None:
        """The chat format this prompter renders (see :data:`FAMILIES`); None if unknown."""
        return prompt_family(self.raw_template if self.mode == "raw" else self.tokenizer.chat_template)

    @classmethod
    def build(cls, params: PromptParams, skills: Skills, tokenizer: Any) -> Prompter:
        """From params.yaml's ``finetune.prompt`` section and the skill specs."""
        system_text = Path(params.system_template).read_text(encoding="utf-8")
        raw = read_raw_template(params.raw_template) if params.mode == "raw" else None
        system = render_system_prompt(skills, system_text)
        biases = {name: getattr(params, name) for name in BIASES}
        prompter = cls(params.mode, system, tokenizer, raw, **hints_of(params), **biases)
        if params.other_bias and tokenizer is not None:
            other = prompter.answer_start_token(f"{OTHER}()")
            shared = [name for name in skills if name != OTHER and prompter.answer_start_token(f"{name}(") == other]
            if shared:
                raise PromptError(f"other_bias: {', '.join(shared)} calls start with the same token as other()")
        return prompter

    def _chat(self, user: str, answer: str | None = None) -> str:
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=answer is None)

    def _raw_split(self) -> tuple[str, str]:
        """(text before the answer, text after it); whitespace before ``{answer}`` belongs to the completion."""
        head, tail = self.raw_template.split("{answer}")
        stripped = head.rstrip(" ")
        return stripped, head[len(stripped) :] + "{answer}" + tail

    def prompt(self, user: str) -> str:
        """The inference text for ``user``, ending exactly where the answer starts."""
        user = with_hints(user, **hints_of(self))
        if self.mode == "chat":
            return self._chat(user)
        head, _ = self._raw_split()
        values = {"system": self.system, "user": user}
        return re.sub(r"\{(system|user)\}", lambda m: values[m.group(1)], head)

    def place(self, user: str) -> str:
        """The place hint's name of the place ``user`` names ("" if none or the hint is off): the copy bias
        favours it inside a location.

        >>> Prompter("raw", "", raw_template="{user} {answer}", places=True).place("time in hell sinky")
        'Helsinki'
        """
        return (place(user) or "") if self.places else ""

    def completion(self, answer: str) -> str:
        """The answer plus whatever the format emits after it (``<|im_end|>\\n`` for ChatML)."""
        if self.mode == "raw":
            return self._raw_split()[1].replace("{answer}", answer)
        full, prompt = self._chat(_DUMMY_USER, answer), self._chat(_DUMMY_USER)
        if not full.startswith(prompt) or answer not in full[len(prompt) :]:
            raise PromptError("the chat template does not render the prompt as a prefix of the conversation")
        return full[len(prompt) :]

    @property
    def end_of_turn(self) -> str:
        """The text that ends an answer, e.g. ``<|im_end|>`` or ``</s>``."""
        return self.completion("").strip()

    def answer_from(self, generated: str) -> str:
        """The answer part of generated text: everything before the end of the turn, stripped."""
        end = self.end_of_turn
        return (generated.split(end)[0] if end else generated).strip()

    def tokenize(self, user: str, answer: str) -> tuple[list[int], list[int]]:
        """(input_ids, labels) for training: the prompt's tokens exactly as at inference, then the completion's.

        Labels are -100 on the prompt, so only the answer and its end of turn are learned.
        """
        prompt_ids = self.tokenizer(self.prompt(user), add_special_tokens=False)["input_ids"]
        completion_ids = self.tokenizer(self.completion(answer), add_special_tokens=False)["input_ids"]
        return prompt_ids + completion_ids, [-100] * len(prompt_ids) + completion_ids

    def answer_start_token(self, answer: str) -> int:
        """The first token the model writes for ``answer``, e.g. ``"other()"`` -> the id of ``other``."""
        return self.tokenizer(self.completion(answer), add_special_tokens=False)["input_ids"][0]

    def save(self, directory: str | Path) -> None:
        """Write prompt_config.json + system_prompt.txt (+ prompt_template.txt in raw mode) into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / SYSTEM_FILE).write_text(self.system + "\n", encoding="utf-8")
        config = {"mode": self.mode, "system_prompt": SYSTEM_FILE, "raw_template": None}
        config |= hints_of(self)
        config |= {name: getattr(self, name) for name in (*BIASES, *SAID)}
        if self.raw_template is not None:
            (d / RAW_FILE).write_text(self.raw_template + "\n", encoding="utf-8")
            config["raw_template"] = RAW_FILE
        (d / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, tokenizer: Any) -> Prompter:
        """The Prompter saved by :meth:`save` (e.g. in an adapter folder)."""
        d = Path(directory)
        path = d / CONFIG_FILE
        if not path.exists():
            raise PromptError(f"{path}: missing; is {d} a folder written by the finetune stage?")
        config = json.loads(path.read_text(encoding="utf-8"))
        system = (d / config["system_prompt"]).read_text(encoding="utf-8").removesuffix("\n")
        raw = read_raw_template(d / config["raw_template"]) if config.get("raw_template") else None
        hints = {name: config.get(name, False) for name in HINTS}
        decoding = {name: config.get(name, 0.0) for name in BIASES} | {
            "copied": tuple(config.get("copied", ())),
            "spanned": tuple(config.get("spanned", ())),
            "never_first": {k: tuple(v) for k, v in config.get("never_first", {}).items()},
            "start_within": dict(config.get("start_within", {})),
            "never_inside": {k: tuple(v) for k, v in config.get("never_inside", {}).items()},
        }
        return cls(config["mode"], system, tokenizer, raw, **hints, **decoding)


def override_prompter(
    system: str, tokenizer: Any, prompt: str | None, prompt_file: str | None, **hints: bool
) -> Prompter:
    """The prompter of a prompt override (eval's ``prompt``/``prompt_file``) with the given system prompt and
    :data:`HINTS` (the model's own: it was trained with or without them).

    ``prompt`` is the text of a raw prompt (``{system}`` ``{user}`` ``{answer}``) or ``"chat"`` for the
    tokenizer's chat template; ``prompt_file`` is a raw prompt file such as ``prompts/mistral.txt``.

    >>> override_prompter("SYS", None, "Q: {user}\\nA: {answer}", None).prompt("hi")
    'Q: hi\\nA:'
    >>> override_prompter("SYS", None, "{system} {answer}", None)
    Traceback (most recent call last):
    ...
    skillcall.prompting.PromptError: eval.prompt: needs exactly one {user} placeholder
    """
    if prompt is not None and prompt_file is not None:
        raise PromptError("give a prompt inline (eval.prompt, --prompt) or as a file (eval.prompt_file), not both")
    if prompt == "chat":
        return Prompter("chat", system, tokenizer, **hints)
    if prompt is not None:
        check_raw_template(prompt, "eval.prompt")
        return Prompter("raw", system, tokenizer, prompt, **hints)
    if not Path(prompt_file).is_file():
        shipped = ", ".join(sorted(p.name for p in Path("prompts").glob("*.txt"))) or "none here"
        raise PromptError(f"{prompt_file}: no such prompt file (prompts/: {shipped})")
    return Prompter("raw", system, tokenizer, read_raw_template(prompt_file), **hints)


def check_prompt_family(prompter: Prompter, expected: str | None, where: str, model: str) -> None:
    """Raise if ``prompter`` writes another known chat format than the one ``model`` expects (``expected``).

    >>> check_prompt_family(Prompter("raw", "S", raw_template="[INST] {user} [/INST] {answer}</s>"), "chatml",
    ...                     "prompts/mistral.txt", "models/base")
    Traceback (most recent call last):
    ...
    skillcall.prompting.PromptError: prompts/mistral.txt: a mistral-format prompt, but models/base expects chatml; set eval.allow_prompt_mismatch: true (--allow-prompt-mismatch) to evaluate it anyway
    """
    got = prompter.family
    if expected and got and got != expected:
        raise PromptError(
            f"{where}: a {got}-format prompt, but {model} expects {expected}; "
            "set eval.allow_prompt_mismatch: true (--allow-prompt-mismatch) to evaluate it anyway"
        )
