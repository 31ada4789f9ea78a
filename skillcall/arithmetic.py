"""Spoken arithmetic read into the math skill's expression, when the whole request is one operation: a hint.

The 135M model gets the operator or the operand order of plain arithmetic wrong now and then ("six hundred and
forty over thirty two" -> ``640+32``, an average of three numbers divided by 4). :func:`arithmetic` reads the
requests that are exactly one operation, after wake words and "what's"-like openers: on two numbers ("plus",
"subtract A from B", "the difference between", "the product of"), a percentage (of, off, a tip on), a root, a
square or cube, a fraction ("seven eighths of", "half of", "double"), or the sum or mean of a list; steps done
one after another ("subtract twelve from fifty and then double it"); a conversion between exact units of time,
length, weight or volume ("how many hours in three days", :func:`conversion`); and the word problems that need no
guess: a rate asked over another period ("fifty dollars a week how much is that in a year"), an age from two
numbers ("in eight years i'll be forty how old am i now"), a value changed up or down ("it was minus seven and
it's warmed up twelve degrees"), a score as a percentage ("eighty five out of ninety two what percentage is that")
and an amount split some ways ("the rent's two thousand one hundred split three ways"); each in the form the hand
examples in ``examples/math.txt`` write it. Anything more (other word problems, "five plus three times two", "7²")
gets no reading, and the model answers alone.

    >>> arithmetic("uh what's six hundred and forty over thirty two")
    '640/32'
    >>> arithmetic("alexa mean of thirty three forty one fifty and sixty two")
    '(33+41+50+62)/4'
    >>> arithmetic("What's 15% of 80?"), arithmetic("nought point five times sixty"), arithmetic("root of 169")
    ('15/100*80', '0.5*60', 'sqrt(169)')
    >>> arithmetic("subtract eight from fifty"), arithmetic("two plus three all squared"), arithmetic("half of 7")
    ('50-8', '(2+3)**2', '7/2')
    >>> arithmetic("twelve minus five then divide by two"), arithmetic("five plus three times two")  # which first?
    ('(12-5)/2', None)
    >>> arithmetic("a hundred and five") is None  # "and" inside a number is no addition
    True
"""

from __future__ import annotations

import re
from functools import lru_cache

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
    "how much is|calculate|compute|work out|can you|could you|tell me|give me|calc|do|add|the|um|umm|uh|uhh|er|erm|"
    "find|what does|what do you get if you|what do you get when you|knock|take|lop"
)
_PRE, _POST = (
    rf"(?:(?:{_OPENERS}) )*",
    r"(?: (?:please|for me|equals?|is|makes?|then|again|dollars|bucks|pounds|euros|um|uh|er))*",
)
_OF = r"(?:percent|per cent)"
_FRACTIONS = {"halves": 2, "thirds": 3, "quarters": 4, "fourths": 4, "fifths": 5, "sixths": 6, "sevenths": 7,
              "eighths": 8, "ninths": 9, "tenths": 10}  # fmt: skip
_FORMS = {  # pattern -> the expression of its numbers {0} {1}, the operator {op} or the fraction {fraction} said
    rf"{_N} ({'|'.join(_OPS.values())}) {_N}": "{0}{op}{1}",
    rf"{_N} ({'|'.join(_OPS.values())}) {_N} all squared": "({0}{op}{1})**2",
    rf"{_N} {_OF} of {_N}": "{0}/100*{1}",
    rf"(?:a |an )?{_N} {_OF} tip on {_N}": "{0}/100*{1}",
    rf"{_N} {_OF} off(?: of)? {_N}": "{1}-{0}/100*{1}",
    rf"(?:the )?(?:square )?root of {_N}": "sqrt({0})",
    rf"(?:the )?(?:cube|third) root of {_N}": "{0}**(1/3)",
    rf"{_N} squared|(?:the )?square of {_N}|square {_N}": "{0}**2",
    rf"{_N} cubed|(?:the )?cube of {_N}": "{0}**3",
    rf"subtract {_N} from {_N}|take {_N} (?:away )?from {_N}": "{1}-{0}",
    rf"add {_N} to {_N}": "{1}+{0}",
    rf"(?:the )?difference between {_N} and {_N}": "{max}-{min}",
    rf"multiply {_N} (?:by|and|with) {_N}|(?:the )?product of {_N} and {_N}": "{0}*{1}",
    rf"multiply {_N} by itself": "{0}*{0}",
    rf"divide {_N} by {_N}|(?:the )?quotient of {_N} and {_N}": "{0}/{1}",
    rf"half of {_N}|halve {_N}": "{0}/2",
    rf"a third of {_N}": "{0}/3",
    rf"a quarter of {_N}": "{0}/4",
    rf"double {_N}": "{0}*2",
    rf"triple {_N}": "{0}*3",
    rf"{_N} ({'|'.join(_FRACTIONS)}) of {_N}": "{0}/{fraction}*{1}",
}
_LISTS = {  # a list of numbers -> the expression, from their "+"-joined {sum} and {count}
    rf"(?:the )?(?:average|mean) of ({_WORD}(?: {_WORD})*)": "({sum})/{count}",
    rf"(?:the )?(?:sum|total) of ({_WORD}(?: {_WORD})*)|add up ({_WORD}(?: {_WORD})*)": "{sum}",
}
_LAZY = _N.replace(")*)", ")*?)")  # the same number, as short as it can be: "between a hundred and five and six"
_PATTERNS = [
    (re.compile(f"{_PRE}(?:{body.replace(_N, n)}){_POST}"), form) for body, form in _FORMS.items() for n in (_N, _LAZY)
]
_LIST_PATTERNS = [(re.compile(f"{_PRE}(?:{body}){_POST}"), form) for body, form in _LISTS.items()]
_THAT = r"(?:it|that|this|the result|the answer|the total|the sum|whatever you get|the whole thing|the lot|everything)"
_STEPS = {  # a step done to the result so far -> its operator and operand; said after "then", or as an order
    rf"(?:add|plus) {_N}(?: to {_THAT})?": ("+", "{0}"),
    rf"(?:subtract|minus|take away|take off|less) {_N}|take {_N} (?:away|off)": ("-", "{0}"),
    rf"(?:multiply|times)(?: {_THAT})? by {_N}|times {_N}": ("*", "{0}"),
    rf"divide(?: {_THAT})? by {_N}|divided by {_N}": ("/", "{0}"),
    rf"double {_THAT}": ("*", "2"),
    rf"triple {_THAT}": ("*", "3"),
    rf"halve {_THAT}": ("/", "2"),
    rf"square {_THAT}": ("**", "2"),
    rf"cube {_THAT}": ("**", "3"),
}
_STEP_PATTERNS = [(re.compile(f"(?:{body}){_POST}"), step) for body, step in _STEPS.items()]
_THEN = re.compile(r"(?:and then|then|and after that|after that|and) ")
_ORDER = re.compile(r"(?:add|subtract|take|multiply|divide|double|triple|halve|square|cube)\b")  # needs no "then"
_START = re.compile(f"{_PRE}(?:start with )?{_N}")  # "take ninety", the number a chain of steps starts from
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 3}
_UNITS = {  # a unit -> how it is said (singular and plural)
    "second": "seconds?|secs?", "minute": "minutes?|mins?", "hour": "hours?|hrs?", "day": "days?", "week": "weeks?",
    "fortnight": "fortnights?", "month": "months?", "year": "years?", "decade": "decades?",
    "century": "century|centuries", "millimetre": "millimet(?:re|er)s?", "centimetre": "centimet(?:re|er)s?",
    "metre": "met(?:re|er)s?", "kilometre": "kilomet(?:re|er)s?", "inch": "inch(?:es)?", "foot": "foot|feet",
    "yard": "yards?", "mile": "miles?", "gram": "grams?", "kilogram": "kilograms?|kilos?", "ounce": "ounces?",
    "pound": "pounds?", "stone": "stone", "millilitre": "millilit(?:re|er)s?", "litre": "lit(?:re|er)s?",
    "teaspoon": "teaspoons?", "tablespoon": "tablespoons?", "cup": "cups?", "pint": "pints?", "quart": "quarts?",
    "gallon": "gallons?",
}  # fmt: skip
_PER = [  # (big, how many smalls make one, small): exact only, so no conversion between metric and imperial
    ("minute", 60, "second"), ("hour", 60, "minute"), ("day", 24, "hour"), ("week", 7, "day"), ("fortnight", 2, "week"),
    ("year", 12, "month"), ("year", 52, "week"), ("year", 365, "day"), ("decade", 10, "year"), ("century", 100, "year"),
    ("centimetre", 10, "millimetre"), ("metre", 100, "centimetre"), ("metre", 1000, "millimetre"),
    ("kilometre", 1000, "metre"), ("foot", 12, "inch"), ("yard", 3, "foot"), ("mile", 1760, "yard"),
    ("mile", 5280, "foot"), ("kilogram", 1000, "gram"), ("pound", 16, "ounce"), ("stone", 14, "pound"),
    ("litre", 1000, "millilitre"), ("tablespoon", 3, "teaspoon"), ("cup", 16, "tablespoon"), ("pint", 2, "cup"),
    ("quart", 2, "pint"), ("gallon", 4, "quart"),
]  # fmt: skip
_UNIT = "|".join(_UNITS.values())
_ONE = rf"(?:a|an|one|(?P<n>{_N}))"  # the number of the given unit
_CONVERSIONS = [  # the asked unit, the given one and its number
    rf"how many (?P<asked>{_UNIT})(?: are| is| go| does it take)?(?: there)? in(?:to)? {_ONE} (?P<given>{_UNIT})",
    rf"how many (?P<asked>{_UNIT}) (?:is|are|make|makes|make up|in) {_ONE} (?P<given>{_UNIT})",
    rf"(?:convert )?{_ONE} (?P<given>{_UNIT}) (?:in|into|to|in to) (?P<asked>{_UNIT})",
]
_CONVERSION_PATTERNS = [re.compile(f"{_PRE}(?:{body}){_POST}") for body in _CONVERSIONS]
_RATE = re.compile(  # "three coffees a day how many is that in a week": a rate, then a question on another period
    rf"\b(?:a|an|per|every|each) (?P<per>{_UNIT})\b.*\b(?:how (?:much|many|far|long)|what(?:'s| is| do| does| will)?)\b"
    rf".*\b(?:in|over|for|per|a|an|each|every)(?: a| an| one| the whole| the)? (?P<asked>{_UNIT})$"
)
_EDIT = re.compile(r"\b(?:no wait|wait no|no sorry|sorry|i mean|actually|make that|make it|scratch that|or rather|no) ")


def _number(said: str) -> str | None:
    """The one number ``said`` says, in digits, with its sign; None if it says none or several."""
    if re.search(r"\b(?:point|comma)\b.*\b(?:thousand|million)\b", said):  # "two point five million": not read
        return None
    unsigned = re.sub(r"^(?:minus|negative|-) ", "", said)
    numbers = spoken_numbers(unsigned)
    return ("-" if unsigned != said else "") + numbers[0] if len(numbers) == 1 else None


def _expression(form: str, said: list[str]) -> str | None:
    """``form`` filled with the numbers ``said`` (and the operator or fraction said between them), or None."""
    op = fraction = None
    if "{op}" in form:
        a, words, b = said
        if words == "and" and len(spoken_numbers(f"{a} and {b}")) < 2:  # "a hundred and five": one number
            return None
        op, said = next(op for op, spoken in _OPS.items() if re.fullmatch(spoken, words)), [a, b]
    elif "{fraction}" in form:
        fraction, said = _FRACTIONS[said[1]], [said[0], said[2]]
    numbers = [_number(s) for s in said]
    if None in numbers:
        return None
    ordered = sorted(numbers, key=float)
    return form.format(*numbers, op=op, fraction=fraction, min=ordered[0], max=ordered[-1])


def _unit(said: str) -> str:
    """The unit ``said`` names: "feet" -> "foot"."""
    return next(unit for unit, names in _UNITS.items() if re.fullmatch(names, said))


def _path(start: str, goal: str) -> list[tuple[str, int, str]] | None:
    """The fewest ``_PER`` steps from unit ``start`` to ``goal``, each as (from, factor, to); None if none lead
    (or ``start`` is ``goal``)."""
    paths, seen = [[]], {start}
    while paths:
        path = paths.pop(0)
        here = path[-1][2] if path else start
        if here == goal:
            return path or None
        for big, factor, small in _PER:
            for a, b in ((big, small), (small, big)):
                if a == here and b not in seen:
                    seen.add(b)
                    paths.append(path + [(a, factor, b)])
    return None


def _down(path: list[tuple[str, int, str]]) -> bool | None:
    """Whether every step of ``path`` goes to a smaller unit (True), every one to a bigger (False), or mixed (None)."""
    down = {step in _PER for step in path}
    return next(iter(down)) if len(down) == 1 else None


def _divided(number: str, path: list[tuple[str, int, str]]) -> str:
    """``number`` divided by the product of ``path``'s factors: ``84/7``, ``172800/(24*60*60)``."""
    factors = "*".join(str(factor) for _, factor, _ in path)
    return f"{number}/{factors}" if len(path) == 1 else f"{number}/({factors})"


def conversion(asked: str, number: str, given: str) -> str | None:
    """How many ``asked`` units ``number`` ``given`` units are, as the examples write it, else None.

    Down the units, the number times each step ("how many seconds in two hours": ``2*60*60``; the number 1 is
    left out); up them, divided by their product. A way that goes up and then down (weeks into months) is no
    exact conversion and gets no reading.

    >>> conversion("seconds", "1", "day"), conversion("weeks", "350", "days"), conversion("days", "3", "weeks")
    ('24*60*60', '350/7', '3*7')
    >>> conversion("days", "172800", "seconds"), conversion("months", "8", "weeks"), conversion("feet", "1", "mile")
    ('172800/(24*60*60)', None, '5280')
    """
    path = _path(_unit(given), _unit(asked))
    if not path or (down := _down(path)) is None:
        return None
    if not down:
        return _divided(number, path[::-1])
    factors = "*".join(str(factor) for _, factor, _ in path)
    return factors if number == "1" else f"{number}*{factors}"


def _convert(text: str) -> str | None:
    """The conversion the whole of ``text`` asks for ("how many inches in six feet": ``6*12``), else None."""
    for pattern in _CONVERSION_PATTERNS:
        if match := pattern.fullmatch(text):
            number = _number(match["n"]) if match["n"] else "1"
            return conversion(match["asked"], number, match["given"]) if number else None
    return None


def _rate(text: str) -> str | None:
    """A rate said once and asked for over another period: "if i save fifty dollars a week how much is that in a
    year" -> ``50*52``, "twelve millilitres a minute how much is that in a day" -> ``12*60*24`` (the factors from
    the rate's unit to the asked one); None unless ``text`` says exactly one number.

    >>> _rate("i drink three coffees a day how many is that in a week"), _rate("sixty dollars a week what's that a day")
    ('3*7', '60/7')
    >>> _rate("i earn two thousand a day what's that per minute")
    '2000/(24*60)'
    """
    if not (match := _RATE.search(text)) or len(numbers := spoken_numbers(text)) != 1:
        return None
    path = _path(_unit(match["per"]), _unit(match["asked"]))
    if not path or (down := _down(path)) is None:
        return None
    return _divided(numbers[0], path) if down else numbers[0] + "".join(f"*{factor}" for _, factor, _ in path)


_CENTURY = "eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty"
_YEAR = re.compile(  # a year said in two halves: "nineteen forty one", "twenty twenty seven", "nineteen oh five"
    rf"\b({_CENTURY}) (oh (?:one|two|three|four|five|six|seven|eight|nine)|(?:ten|eleven|twelve|thirteen|fourteen|"
    rf"fifteen|sixteen|seventeen|eighteen|nineteen)|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
    rf"(?: (?:one|two|three|four|five|six|seven|eight|nine))?)\b"
)


def _years(text: str) -> str:
    """``text`` with its years said in two halves in digits: "born in nineteen forty one" -> "born in 1941"."""

    def digits(m: re.Match) -> str:
        century, rest = (int(spoken_numbers(part.removeprefix("oh "))[0]) for part in m.groups())
        return str(century * 100 + rest)

    return _YEAR.sub(digits, text)


def _age(text: str) -> str | None:
    """The age asked for from two numbers said, in the examples' form, else None.

    >>> _age("in twelve years i'll be fifty so how old am i now"), _age("ten years ago i was twenty seven how old am i")
    ('50-12', '27+10')
    >>> _age("i'm thirty four how old will i be in twelve years"), _age("she was born in 1982 how old is she in 2026")
    ('34+12', '2026-1982')
    """
    if not re.search(r"\bhow old\b|\bmy age\b", text):
        return None
    if re.search(r"\b(?:born|built|founded|made|started) in\b", text):
        years = spoken_numbers(_years(text))
        return f"{max(years, key=float)}-{min(years, key=float)}" if len(years) == 2 else None
    if len(numbers := spoken_numbers(text)) != 2:
        return None
    ago, ahead = re.search(rf"\b{_N} years? ago\b", text), re.search(rf"\bin {_N} years?\b", text)
    years = _number((ago or ahead)[1]) if (ago or ahead) and not (ago and ahead) else None
    if years not in numbers:
        return None
    age = numbers[1 - numbers.index(years)]
    if ago:  # "ten years ago i was twenty seven": now older; "i'm forty how old was i ten years ago": younger
        return f"{age}-{years}" if re.search(r"\bhow old (?:was|were)\b", text) else f"{age}+{years}"
    asked_ahead = re.search(
        rf"\bhow old (?:will|would|am i going to|is \w+ going to)\b|\bhow old\b.*\bin {_N} years?", text
    )
    return f"{age}+{years}" if asked_ahead else f"{age}-{years}"


_UP = "climbed|climbs|rose|rises|risen|rise|went up|goes up|gone up|go up|warmed up|warms up|warm up|increased|jumped|gained"
_DOWN = "fell|falls|fallen|fall|dropped|drops|drop|went down|goes down|gone down|go down|cooled|cools|decreased|lost"
_AMOUNT = (
    rf"((?:{NUMBER}|{'|'.join(sorted(NUMBER_WORDS))})(?: (?:{NUMBER}|point|and|{'|'.join(sorted(NUMBER_WORDS))}))*)"
)
_FROM = re.compile(rf"(?:(?<!\S)(minus|negative|-) )?\b{_AMOUNT}(?: degrees)?(?: (below zero|below freezing|below))?\b")
_CHANGE = re.compile(rf"\b(?:({_UP})|({_DOWN}))(?: by| another| a further| a)? {_AMOUNT}\b")
_QUESTION = re.compile(
    r"\b(?:what|what's|whats|what'll|what will|where|how (?:cold|warm|hot|much|many|deep|high|low))\b"
)


def _changes(text: str) -> str | None:
    """A value said, then changed up or down, then asked for: "it was minus seven this morning and it's warmed up
    twelve degrees so what's the temperature now" -> ``-7+12``; None unless every number said is the start or a change.

    >>> _changes("it was minus fourteen at dawn and it climbed nine degrees by lunchtime how warm is it at lunch")
    '-14+9'
    >>> _changes("it was three below zero then it rose eight and fell five what's the temperature")
    '-3+8-5'
    """
    changes = list(_CHANGE.finditer(text))
    start = _FROM.search(text)
    if not changes or not start or start.start() > changes[0].start() or not _QUESTION.search(text, changes[-1].end()):
        return None
    said = [_number(start[2])] + [_number(c[3]) for c in changes]
    if None in said or len(spoken_numbers(text.replace("below zero", "below"))) != len(said):
        return None
    first = f"-{said[0]}" if (start[1] or start[3]) and said[0] != "0" else said[0]
    return first + "".join(("+" if c[1] else "-") + n for c, n in zip(changes, said[1:], strict=True))


_SCORE = re.compile(rf"\b{_LAZY} out of {_N}\b")


def _score(text: str) -> str | None:
    """A score asked for as a percentage: "i got eighty five out of ninety two what percentage is that" ->
    ``85/92*100``; None unless those are the only numbers said.

    >>> _score("twelve out of sixteen as a percentage"), _score("i got twelve out of sixteen")
    ('12/16*100', None)
    """
    if not re.search(r"\b(?:percent|per cent|percentage)\b", text) or not (m := _SCORE.search(text)):
        return None
    said = [_number(m[1]), _number(m[2])]
    return f"{said[0]}/{said[1]}*100" if None not in said and len(spoken_numbers(text)) == 2 else None


def _trimmed(number: str) -> str:
    """A number without trailing decimal zeros: money said or written with cents, "84.60" -> ``84.6``, "67.80" ->
    ``67.8``, "12.00" -> ``12``."""
    return re.sub(r"(\.\d*?)0+$", r"\1", number).removesuffix(".")


_SHARE = re.compile(r"\b(?:split|splitting|splits|share|shared|sharing)\b")
_WAYS = re.compile(rf"\b(?:{_N} ways|(?:between|among|amongst|by) (?:the |all )?{_N}\b)")


def _split(text: str) -> str | None:
    """An amount split some ways, each share asked for: "eighty thousand split twelve ways" -> ``80000/12``,
    "split one hundred and twelve pounds forty between the three of us" -> ``112.4/3``; None unless exactly the
    amount and the ways are said.

    >>> _split("we owe a hundred and eighty four dollars split it between the four of us")
    '184/4'
    >>> _split("uh the leaving present is ninety two bucks shared between four people"), _split("split the bill")
    ('92/4', None)
    """
    if not _SHARE.search(text) or not (ways := _WAYS.search(text)) or len(numbers := spoken_numbers(text)) != 2:
        return None
    by = _number(ways[1] or ways[2])
    if by not in numbers or numbers.index(by) != 1:  # the amount comes first
        return None
    return f"{_trimmed(numbers[0])}/{by}"


_TIP = re.compile(rf"\b{_N} {_OF}\b")
_TOTAL = re.compile(r"\b(?:total|altogether|in all|on top|plus|add|adding|added|with the tip|including the tip)\b")


def _tip(text: str) -> str | None:
    """A tip said with its bill in any order: "what's a twenty percent tip on a forty five dollar bill" ->
    ``20/100*45``, the bill and the tip when a total is asked ("the bill's fifty four thirty and i want to add a ten
    percent tip what's the total" -> ``54.3+10/100*54.3``); None unless the percentage and one amount are all the
    numbers said. An amount said as dollars and cents without the words ("sixty seven eighty") is 67.8.

    >>> _tip("what would the tip be on forty two dollars at eighteen percent"), _tip("tip twenty percent")
    ('18/100*42', None)
    >>> _tip("uh seventy three twenty plus a fifteen percent tip what do i pay in total")
    '73.2+15/100*73.2'
    """
    if not re.search(r"\btip\b", text) or len(rates := _TIP.findall(text)) != 1 or (rate := _number(rates[0])) is None:
        return None
    rest = _TIP.sub(" ", text)
    runs = [run for run in re.findall(rf"\b{_N}\b", rest) if spoken_numbers(run)]
    if len(runs) != 1 or re.search(r"\b(?:ways|each|between|per person|of us)\b", rest):
        return None
    said = spoken_numbers(runs[0])
    if len(said) == 2 and "." not in said[0] and 10 <= float(said[1]) < 100:  # "sixty seven eighty": dollars, cents
        said = [f"{said[0]}.{said[1]}"]
    if len(said) != 1:
        return None
    amount = _trimmed(said[0])
    return f"{amount}+{rate}/100*{amount}" if _TOTAL.search(rest) else f"{rate}/100*{amount}"


def _read(text: str) -> str | None:
    """The expression the whole of ``text`` (lowercase words) asks for, else None."""
    if read := _convert(text):
        return read
    for pattern, form in _LIST_PATTERNS:
        listed = pattern.fullmatch(text)
        said = next(filter(None, listed.groups())) if listed else ""
        numbers = spoken_numbers(said)
        if len(numbers) > 1 and not re.search(r"\b(?:point|comma)\b", said):  # "three point two four": 3.2, 4?
            return form.format(sum="+".join(numbers), count=len(numbers))
    for pattern, form in _PATTERNS:
        if (match := pattern.fullmatch(text)) and (read := _expression(form, [g for g in match.groups() if g])):
            return read
    return None


def _precedence(expression: str) -> int:
    """How tightly ``expression``'s outermost operator binds (``_PRECEDENCE``; 4: a number or a call)."""
    while (flat := re.sub(r"\([^()]*\)", "x", expression)) != expression:
        expression = flat
    operators = re.findall(r"(?<=[\w)])(\*\*|[-+*/])", expression)
    return min((_PRECEDENCE[op] for op in operators), default=4)


def _then(left: str, step: tuple[str, str]) -> str:
    """``left`` with one more step done to it, in as few brackets as it needs: ("50-12", ("*", "2")) -> (50-12)*2."""
    op, operand = step
    bracket = _precedence(left) < _PRECEDENCE[op] or (op == "**" and _precedence(left) < 4)
    return f"({left}){op}{operand}" if bracket else f"{left}{op}{operand}"


def _step(text: str) -> tuple[str, str] | None:
    """The step ``text`` says ("then divide by five" -> ("/", "5")), None if it says none."""
    for pattern, (op, form) in _STEP_PATTERNS:
        if (match := pattern.fullmatch(text)) and None not in (numbers := [_number(g) for g in match.groups() if g]):
            return op, form.format(*numbers)
    return None


@lru_cache(maxsize=4096)
def _chain(text: str) -> str | None:
    """The expression of a request done in steps, one after another, else None.

    >>> _chain("subtract twelve from fifty and then double it"), _chain("take ninety subtract fifteen then halve it")
    ('(50-12)*2', '(90-15)/2')
    """
    words = text.split(" ")
    for cut in range(len(words) - 1, 0, -1):
        head, tail = " ".join(words[:cut]), " ".join(words[cut:])
        said = tail[then.end() :] if (then := _THEN.match(tail)) else tail
        if not (then or _ORDER.match(tail)) or not (step := _step(said)):
            continue
        start = _START.fullmatch(head)
        if left := _read(head) or (start and _number(start.group(1))) or _chain(head):
            return _then(left, step)
    return None


def arithmetic(utterance: str) -> str | None:
    """The expression ``utterance`` asks for when it is plain arithmetic (above), else None.

    A self-correction is read from the words after it: "fifteen percent of ninety sorry twenty percent of ninety"
    is ``20/100*90``.
    """
    if re.search(r"[^a-zA-Z0-9\s,.?!'%+*/×÷-]", utterance):  # "7²", "(2+3)*4": more than this reader knows
        return None
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", utterance.lower().replace("%", " percent"))  # 1,406: one number
    text = re.sub(r"([-+*/×÷])", r" \1 ", text)
    text = " ".join(re.findall(r"[a-z0-9.']+|[-+*/×÷]", text)).strip(".")
    for said in [text] + [text[edit.end() :] for edit in _EDIT.finditer(text)]:
        if read := _read(said) or _chain(said):
            return read
    return _rate(text) or _age(text) or _changes(text) or _score(text) or _split(text) or _tip(text)
