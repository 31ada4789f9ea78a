"""Skill specs, parsed from the signature line of an example file.

>>> s = parse_signature('notes(action="add|list", note="[note]") add or list notes.')
>>> s.name, [p.name for p in s.params], s.params[0].choices, s.description
('notes', ['action', 'note'], ('add', 'list'), 'add or list notes.')
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

OTHER = "other"  # the skill of non-requests ("thanks", chatter): other() takes no arguments
_PLACEHOLDER = re.compile(r"^\[([A-Za-z_][\w ]*)\]$")
_SIGNATURE = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*?)\)(.*)$")


class SignatureError(ValueError):
    """A signature line that cannot describe a skill."""


@dataclass(frozen=True)
class Param:
    """One parameter: either free text (``placeholder``) or a closed set (``choices``)."""

    name: str
    placeholder: str | None = None
    choices: tuple[str, ...] | None = None

    def spec(self) -> str:
        """``'location="[location]"'`` or ``'action="add|list"'``."""
        value = "|".join(self.choices) if self.choices else f"[{self.placeholder}]"
        return f'{self.name}="{value}"'


@dataclass(frozen=True)
class Skill:
    name: str
    params: tuple[Param, ...] = ()
    description: str = ""
    source: str = field(default="", compare=False)  # "examples/weather.txt:2"

    @property
    def signature(self) -> str:
        """``'weather(location="[location]")'``."""
        return f"{self.name}({', '.join(p.spec() for p in self.params)})"

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "signature": self.signature,
            "description": self.description,
            "params": [
                {"name": p.name, "placeholder": p.placeholder, "choices": list(p.choices) if p.choices else None}
                for p in self.params
            ],
        }


Skills = dict[str, Skill]


def parse_signature(line: str, source: str = "") -> Skill:
    """Parse ``name(p="[placeholder]", q="a|b") description`` into a :class:`Skill`."""
    match = _SIGNATURE.match(line)
    if not match:
        raise SignatureError(f"expected a signature such as 'weather(location=\"[location]\")', got {line!r}")
    name, arglist, description = match.group(1), match.group(2), match.group(3).strip()
    try:
        node = ast.parse(f"f({arglist})", mode="eval").body
    except SyntaxError as e:
        raise SignatureError(f"cannot parse the parameters of {name!r}: {e.msg}") from None
    assert isinstance(node, ast.Call)
    if node.args:
        raise SignatureError(f'signature of {name!r} has positional parameters; write name="[placeholder]"')
    params = []
    for kw in node.keywords:
        if kw.arg is None or not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str)):
            raise SignatureError(f'parameter of {name!r} must be name="[placeholder]" or name="a|b"')
        value = kw.value.value
        placeholder = _PLACEHOLDER.match(value)
        if placeholder:
            params.append(Param(kw.arg, placeholder=placeholder.group(1)))
        elif value and "[" not in value:
            params.append(Param(kw.arg, choices=tuple(v.strip() for v in value.split("|"))))
        else:
            raise SignatureError(f'parameter {kw.arg!r} of {name!r}: expected "[placeholder]" or "a|b", got {value!r}')
    if len({p.name for p in params}) != len(params):
        raise SignatureError(f"signature of {name!r} repeats a parameter")
    return Skill(name, tuple(params), description, source)
