"""The length of time an utterance says, written the way the timer skill takes it.

Speech recognition writes "an hour and twenty minutes"; ``timer`` takes ``"1 hour 20 minutes"``. A 135M model
reading "an hour" as 1 and "and a half" as 30 minutes got it wrong ("an hour and twenty minutes" ->
``"20 minutes"``), so the prompter can append this line (``finetune.prompt.durations``).

>>> duration("can you set a timer for an hour and twenty minutes")
'1 hour 20 minutes'
>>> duration("two and a half minutes for the eggs"), duration("a quarter of an hour"), duration("an hour and forty")
('2 minutes 30 seconds', '15 minutes', '1 hour 40 minutes')
>>> duration("what's the weather like") is None
True
"""

from __future__ import annotations

import re

from skillcall.numbers import NUMBER, NUMBER_WORDS, ONES, TENS, spoken_numbers

UNITS = {"hour": 3600, "minute": 60, "second": 1}  # largest first
_UNIT = {"hr": "hour", "hrs": "hour", "min": "minute", "mins": "minute", "sec": "second", "secs": "second"}
_UNIT |= {u: u for u in UNITS} | {f"{u}s": u for u in UNITS}
_SMALLER = {"hour": "minute", "minute": "second"}  # the unit of a bare number after one ("an hour and forty")
_QUARTERS = {"half": 0.5, "quarter": 0.25, "quarters": 0.75}  # "half an hour", "three quarters of an hour"
_AND = {("and", "a", "half"): 0.5, ("and", "a", "quarter"): 0.25, ("and", "three", "quarters"): 0.75}  # after a unit
_WRITTEN = {"1/2": "5", "1/4": "25", "3/4": "75"}  # "2 1/2 minutes" is 2.5
_CORRECTION = {"no", "wait", "make", "it", "that", "actually", "sorry", "i", "mean", "uh", "um", "oh", "or"}
# a run of _CORRECTION words ("no make it", "uh make that") with one of _TAKE_BACK takes back what was said
_TAKE_BACK = {"no", "wait", "make", "actually", "sorry"}
_IN_NUMBER = ("and", "a", "half", "quarter", "quarters", "point")  # words inside a number ("six and a half")
_DIGITS = re.compile(NUMBER)
_ONES = frozenset(ONES) | frozenset(TENS)  # number words that are no scale


def _words(text: str) -> list[str]:
    """Lowercase words and numbers; "10min" is two words, "2 1/2" is 2.5.

    >>> _words("Set a timer for 1h 30m, or 2 1/2 minutes")
    ['set', 'a', 'timer', 'for', '1', 'hours', '30', 'minutes', 'or', '2.5', 'minutes']
    """
    text = re.sub(r"(?<=\d)h\b", " hours", re.sub(r"(?<=\d)m\b", " minutes", text.lower()))  # "1h 30m"
    text = re.sub(r"(?<=\d)(?=[a-z])", " ", text)
    for written, said in _WRITTEN.items():
        text = re.sub(rf"(?<=\d) {written}\b", f".{said}", text)
    return re.findall(rf"{NUMBER}|[a-z]+", text)


def _is_number(word: str) -> bool:
    return word in NUMBER_WORDS or bool(_DIGITS.fullmatch(word))


def _count(before: list[str]) -> tuple[float, int] | None:
    """The count said at the end of ``before`` (the words up to a unit word) and how many words it takes.

    >>> _count("a six and a half".split()), _count("for an".split()), _count("half an".split())
    ((6.5, 4), (1.0, 1), (0.5, 2))
    >>> _count("three quarters of an".split()), _count("timer for".split())
    ((0.75, 4), None)
    """
    if before[-1:] in (["a"], ["an"]):
        head = before[:-2] if before[-2:-1] == ["of"] else before[:-1]
        if head and head[-1] in _QUARTERS:  # "half an", "a quarter of an", "three quarters of an"
            three = head[-1] == "quarters" and head[-2:-1] == ["three"]
            return _QUARTERS[head[-1]], len(before) - len(head) + 1 + three
        return 1.0, 1
    if before[-2:] in (["a", "half"], ["a", "quarter"]) and before[-3:-2] != ["and"]:  # "a half hour"
        return _QUARTERS[before[-1]], 1
    if before[-3:] == ["a", "couple", "of"]:
        return 2.0, 3
    n = 0
    while n < len(before) and (_is_number(before[-n - 1]) or before[-n - 1] in _IN_NUMBER):
        n += 1
    while n and not _is_number(before[-n]) and not (before[-n] == "a" and before[-n + 1] in NUMBER_WORDS - _ONES):
        n -= 1  # "and", "a" ahead of the number belong to the sentence, but not "a" of "a hundred"
    said = spoken_numbers(" ".join(before[len(before) - n :])) if n else []
    return (float(said[-1]), n) if said else None


def _bare(after: list[str], limit: int | None = 60) -> tuple[int, int] | None:
    """A whole number under ``limit`` at the start of ``after`` with no unit of its own ("an hour (and) forty"):
    it and its words.

    >>> _bare("and forty on the brisket".split()), _bare("fifteen minutes".split()), _bare("please".split())
    ((40, 2), None, None)
    """
    skip = 1 if after[:1] == ["and"] else 0
    n = 0
    while skip + n < len(after) and _is_number(after[skip + n]):
        n += 1
    if not n or (skip + n < len(after) and after[skip + n] in _UNIT):
        return None
    said = spoken_numbers(" ".join(after[skip : skip + n]))
    if len(said) != 1 or not float(said[0]).is_integer() or not 0 < float(said[0]) < (limit or float("inf")):
        return None
    return int(said[0]), skip + n


def _add(length: dict[str, int], count: float, unit: str) -> None:
    """Add ``count`` of ``unit`` to ``length``: the whole part in that unit, a fraction in the smaller ones.

    >>> length = {}; _add(length, 6.5, "minute"); _add(length, 90, "second"); length
    {'minute': 6, 'second': 120}
    """
    whole = int(count)
    length[unit] = length.get(unit, 0) + whole
    rest = round((count - whole) * UNITS[unit])
    for smaller, size in UNITS.items():
        if size < UNITS[unit] and rest >= size:
            length[smaller] = length.get(smaller, 0) + rest // size
            rest %= size


def _spell(length: dict[str, int]) -> str:
    """``{"hour": 1, "minute": 30}`` -> ``"1 hour 30 minutes"``: each unit that is not zero, largest first."""
    return " ".join(f"{length[u]} {u}{'s' if length[u] != 1 else ''}" for u in UNITS if length.get(u))


def duration(text: str) -> str | None:
    """The last length of time ``text`` says, in whole units ("1 hour 30 minutes"), or None if it says none.

    Pieces in falling units with nothing or "and" between make one length ("an hour and a half", "one minute
    thirty seconds"); a bare number after a unit takes the next smaller one ("an hour and forty"). A count stays
    in the unit said ("ninety seconds" is 90 seconds); a fraction spreads to smaller units ("six and a half minutes").

    >>> duration("ninety seconds"), duration("timer one hour fifteen"), duration("a minute and a half please")
    ('90 seconds', '1 hour 15 minutes', '1 minute 30 seconds')
    >>> duration("three quarters of an hour"), duration("in 2 hrs"), duration("a forty five second timer")
    ('45 minutes', '2 hours', '45 seconds')
    >>> duration("ten minutes no wait fifteen minutes"), duration("two hours and five minutes and ten seconds")
    ('15 minutes', '2 hours 5 minutes 10 seconds')
    """
    words = _words(text)
    lengths: list[dict[str, int]] = []  # the lengths said: unit -> count
    unit_of_last = ""  # the smallest unit of the last length, while the next piece may still join it
    end = 0  # words before this index are taken
    i = 0
    while i < len(words):
        unit = _UNIT.get(words[i])
        counted = _count(words[end:i]) if unit else None
        if unit is None or counted is None:
            i += 1
            continue
        count, size = counted
        between = words[end : i - size]
        if not (unit_of_last and UNITS[unit] < UNITS[unit_of_last] and between in ([], ["and"])):
            lengths.append({})
        unit_of_last, end = unit, i + 1
        if (part := _AND.get(tuple(words[end : end + 3]))) is not None:  # "an hour and a half"
            count, end = count + part, end + 3
        _add(lengths[-1], count, unit)
        fixed = end
        while fixed < len(words) and words[fixed] in _CORRECTION:
            fixed += 1
        if fixed > end and (bare := _bare(words[fixed:], limit=None)):  # "ten minutes no make it fifteen"
            lengths.append({})
            _add(lengths[-1], bare[0], unit)
            end = fixed + bare[1]
        elif unit in _SMALLER and (bare := _bare(words[end:])):  # "an hour and forty"
            _add(lengths[-1], bare[0], _SMALLER[unit])
            unit_of_last, end = _SMALLER[unit], end + bare[1]
        i = end
    if lengths and (instead := _said_instead(words[end:])):  # "six minutes for the tea actually make it four"
        lengths.append({})
        _add(lengths[-1], instead, unit_of_last)
    return (_spell(lengths[-1]) or None) if lengths else None


def _said_instead(after: list[str]) -> int | None:
    """The bare number ``after`` (the words after the last length) ends with, said after a correction that takes
    the length back, else None.

    >>> _said_instead("for the tea actually make it four".split()), _said_instead("for the two of us".split())
    (4, None)
    """
    for start, word in enumerate(after):
        if word in _TAKE_BACK:
            fixed = start
            while fixed < len(after) and after[fixed] in _CORRECTION:
                fixed += 1
            if (bare := _bare(after[fixed:], limit=None)) and fixed + bare[1] == len(after):
                return bare[0]
    return None
