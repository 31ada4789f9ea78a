"""Spoken arithmetic read into the math skill's expression, when the whole request is one operation: a hint.

The 135M model gets the operator or the operand order of plain arithmetic wrong now and then ("six hundred and
forty over thirty two" -> ``640+32``, an average of three numbers divided by 4). :func:`arithmetic` reads the
requests that are exactly one operation on two numbers, a percentage of a number, a root, a square or cube, or
the mean of a list, after wake words and "what's"-like openers; anything more (word problems, two operations,
"7²") gets no reading, and the model answers alone.

    >>> arithmetic("uh what's six hundred and forty over thirty two")
    '640/32'
    >>> arithmetic("alexa mean of thirty three forty one fifty and sixty two")
    '(33+41+50+62)/4'
    >>> arithmetic("What's 15% of 80?"), arithmetic("nought point five times sixty"), arithmetic("root of 169")
    ('15/100*80', '0.5*60', 'sqrt(169)')
    >>> arithmetic("twelve minus five then divide by two") is None  # two operations
    True
    >>> arithmetic("a hundred and five") is None  # "and" inside a number is no addition
    True
"""

from __future__ import annotations

import re

from skillcall.numbers import NUMBER, NUMBER_WORDS, spoken_numbers

_WORD = (
    rf"(?:{NUMBER}|{'|'.join(sorted(NUMBER_WORDS | {'point', 'comma', 'and', 'a', 'half', 'quarter', 'quarters'}))})"
)
_N = rf"((?:minus |negative |- )?{_WORD}(?: {_WORD})*)"  # a number as said (checked: it says exactly one)
_OPS = {
    "+": "plus|add|and|\\+", "-": "minus|take away|less|-", "*": "times|multiplied by|x|\\*|×",
    "/": "divided by|over|/|÷", "**": "to the power of",
}  # fmt: skip
_OPENERS = (
    "alexa|hey google|ok google|hey siri|siri|hey computer|computer|so|okay|ok|please|quick|what's|what is|whats|"
    "how much is|calculate|compute|work out|can you|could you|tell me|give me|calc|do|add|the|um|umm|uh|uhh|er|erm"
)
_PRE, _POST = rf"(?:(?:{_OPENERS}) )*", r"(?: (?:please|for me|equals|is|then|again|um|uh|er))*"
_FORMS = {  # pattern -> the expression, {0} {1} the numbers (binary: its operator is the second group)
    rf"{_N} ({'|'.join(_OPS.values())}) {_N}": None,
    rf"{_N} (?:percent|per cent) of {_N}": "{0}/100*{1}",
    rf"(?:the )?(?:square )?root of {_N}": "sqrt({0})",
    rf"{_N} squared": "{0}**2",
    rf"{_N} cubed": "{0}**3",
}
_PATTERNS = [(re.compile(f"{_PRE}{body}{_POST}"), form) for body, form in _FORMS.items()]
_MEAN = re.compile(rf"{_PRE}(?:the )?(?:average|mean) of ({_WORD}(?: {_WORD})*){_POST}")


def _number(said: str) -> str | None:
    """The one number ``said`` says, in digits, with its sign; None if it says none or several."""
    if re.search(r"\b(?:point|comma)\b.*\b(?:thousand|million)\b", said):  # "two point five million": not read
        return None
    unsigned = re.sub(r"^(?:minus|negative|-) ", "", said)
    numbers = spoken_numbers(unsigned)
    return ("-" if unsigned != said else "") + numbers[0] if len(numbers) == 1 else None


def arithmetic(utterance: str) -> str | None:
    """The expression ``utterance`` asks for when it is one operation on numbers or a mean, else None."""
    if re.search(r"[^a-zA-Z0-9\s,.?!'%+*/×÷-]", utterance):  # "7²", "(2+3)*4": more than this reader knows
        return None
    text = re.sub(r"([-+*/×÷])", r" \1 ", utterance.lower().replace("%", " percent"))
    text = " ".join(re.findall(r"[a-z0-9.']+|[-+*/×÷]", text)).strip(".")
    if mean := _MEAN.fullmatch(text):
        numbers = spoken_numbers(mean.group(1))
        return f"({'+'.join(numbers)})/{len(numbers)}" if len(numbers) >= 2 else None
    for pattern, form in _PATTERNS:
        if not (match := pattern.fullmatch(text)):
            continue
        said = match.groups()
        if form is None:  # a binary operation
            if said[1] == "and" and len(spoken_numbers(" ".join(said))) < 2:  # "a hundred and five": one number
                return None
            form = "{0}" + next(op for op, words in _OPS.items() if re.fullmatch(words, said[1])) + "{1}"
            said = (said[0], said[2])
        numbers = [_number(s) for s in said]
        return form.format(*numbers) if None not in numbers else None
    return None
