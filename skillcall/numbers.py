"""Numbers as people say them, both ways: digits -> spoken forms (the augmenter), speech -> digits (the prompt).

>>> number_words("125")
['one hundred twenty five', 'one hundred and twenty five', 'a hundred twenty five', 'a hundred and twenty five']
>>> spoken_numbers("uh what's seven hundred um seven hundred and eight divided by twelve")
['700', '708', '12']
"""

from __future__ import annotations

import re

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split()
)
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_VALUES = {w: i for i, w in enumerate(ONES)} | {w: 10 * i for i, w in enumerate(TENS) if i >= 2} | {"nought": 0}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_FRACTIONS = {("a", "half"): ".5", ("a", "quarter"): ".25", ("three", "quarter"): ".75", ("three", "quarters"): ".75"}
_DECIMAL = ("point", "comma")  # "seven comma five": the decimal comma of many languages, said in English
_CURRENCY = {"dollar", "dollars", "buck", "bucks", "pound", "pounds", "quid", "euro", "euros"}
_NOTES = {"fiver": "5", "fivers": "5", "tenner": "10", "tenners": "10"}  # "two fivers" is said as 2*5: both numbers
NUMBER = r"\d+(?:\.\d+)?"  # a number written in digits
NUMBER_WORDS = frozenset(_VALUES) | frozenset(_SCALES)  # the words numbers are said with ("seven", "hundred")
_DIGITS = re.compile(NUMBER)


def int_words(n: int, first: bool = True) -> list[str]:
    """Spoken forms of ``n``; "a hundred ..." / "a thousand ..." only at the start of the number.

    >>> int_words(1500)
    ['one thousand five hundred', 'a thousand five hundred', 'fifteen hundred']
    """
    if n < 20:
        return [ONES[n]]
    if n < 100:
        return [TENS[n // 10] + (f" {ONES[n % 10]}" if n % 10 else "")]
    forms = _scaled(n, 1000, "thousand", first) if n >= 1000 else _scaled(n, 100, "hundred", first)
    if 1100 <= n < 10000 and n // 100 % 10:  # "fifteen hundred", "twelve hundred and five": prices, years
        forms += _scaled(n, 100, "hundred", first)
    return forms


def _scaled(n: int, size: int, name: str, first: bool) -> list[str]:
    """``n`` spoken as a count of ``size`` ("two thousand ...", "fifteen hundred ...") and the rest."""
    heads = [f"{w} {name}" for w in int_words(n // size, first)]
    heads += [f"a {name}"] if first and n // size == 1 else []
    if n % size == 0:
        return heads
    seps = (" ", " and ") if n % size < 100 else (" ",)  # "two thousand and five", "two thousand three hundred"
    return [f"{h}{sep}{r}" for h in heads for sep in seps for r in int_words(n % size, False)]


def number_words(text: str) -> list[str]:
    """Spoken forms of a number written with digits: ``"2.5"`` -> two point five, two and a half."""
    whole, _, frac = text.partition(".")
    heads = int_words(int(whole))
    if not frac:
        return heads
    out = [f"{h} point {' '.join(ONES[int(d)] for d in frac)}" for h in heads]
    if frac == "5" and whole != "0":
        out += [f"{h} and a half" for h in heads]
    return out


def spoken_numbers(text: str) -> list[str]:
    """The numbers said in ``text``, in digits, in the order said (digits already written are kept).

    A number word right after a complete number starts a new one ("nineteen and thirty one" is two numbers;
    "two three" too); "and" joins only after hundred/thousand; "a" counts only before a scale; "dozen" is 12;
    quarters and halves of an hour are said in minutes (the timer's unit).

    >>> spoken_numbers("two hundred minus sixty three, then 4.5 and nineteen and thirty one")
    ['200', '63', '4.5', '19', '31']
    >>> spoken_numbers("eight hundred and seventy six thousand plus two hundred thousand")
    ['876000', '200000']
    >>> spoken_numbers("three hundred four hundred and fifty, a hundred and forty two a hundred and eight")
    ['300', '450', '142', '108']
    >>> spoken_numbers("a hundred and five point two five, two and a half hours, a cat, twenty twenty four")
    ['105.25', '2.5', '20', '24']
    >>> spoken_numbers("nought point five, point two, seven comma five, a dozen, two dozen, half a dozen")
    ['0.5', '0.2', '7.5', '12', '2', '12', '6']
    >>> spoken_numbers("three quarters of an hour, a quarter of an hour, half an hour, three quarters of sixty")
    ['45', '15', '30', '3', '60']
    >>> spoken_numbers("two and three quarters plus one and a quarter, two and three quarter hours")
    ['2.75', '1.25', '2.75']
    >>> spoken_numbers("a dollar seventy five, four pounds and fifty pence, a tenner, two fivers, five grand")
    ['1.75', '4.5', '10', '2', '5', '5000']
    """
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.lower())  # "2,400": a thousands separator
    words = re.findall(rf"{NUMBER}|[a-z]+|[,;:?!]", text)  # punctuation ends a number
    out: list[str] = []
    total = current = 0
    said, last = False, ""  # a number is open; the kind of its last word: ones | teens | tens | scale

    def close(suffix: str = "") -> None:
        nonlocal total, current, said
        if said:
            out.append(f"{total + current}{suffix}")
        total = current = 0
        said = False

    i = 0
    while i < len(words):
        w, nxt = words[i], words[i + 1 : i + 3]
        w = "thousand" if w == "grand" and said else w  # "five grand": 5000 ("the grand canyon" stays words)
        if _DIGITS.fullmatch(w):
            close()
            out.append(w)
        elif w in _VALUES:
            v = _VALUES[w]
            joins = (last == "tens" and 0 < v < 10) or (last == "scale" and current % 100 == 0 and v < 100)
            if said and not joins:
                close()
            current, said = current + v, True
            last = "tens" if v >= 20 else "ones" if v < 10 else "teens"
        elif w in _SCALES and (said or (i and words[i - 1] == "a")):
            scale = _SCALES[w]
            if not said:
                current, said = 1, True
            if scale == 100 and current >= 100:  # "three hundred four hundred": 300, then 400
                head = current % 100
                current -= head
                close()
                current, said = head, True
            if scale == 100:
                current = (current or 1) * 100
            else:
                total, current = total + current * scale, 0
            last = "scale"
        elif w == "and" and said and tuple(nxt) in _FRACTIONS:  # "two and a half", "one and three quarters"
            close(_FRACTIONS[tuple(nxt)])
            i += 2
        elif w == "and" and said and last == "scale" and nxt[:1] and nxt[0] in _VALUES:
            pass  # "two hundred and five"
        elif w in _CURRENCY and (cents := _cents(words[i + 1 :])) and (said or words[i - 1 : i] == ["a"]):
            if not said:  # "a dollar seventy five"
                current, said = 1, True
            close(f".{cents[0]:02d}".rstrip("0"))  # "four pounds fifty": 4.5
            i += cents[1]
        elif w in _NOTES:
            close()
            out.append(_NOTES[w])
        elif w == "dozen":  # "seven dozen" is said as 7*12: both numbers
            close()
            out.append("12")
        elif w == "half" and nxt == ["a", "dozen"]:
            close()
            out.append("6")
            i += 2
        elif w in ("quarter", "quarters") and words[i + 1 : i + 4] == ["of", "an", "hour"]:  # said as minutes
            n = total + current if said else 1
            total, current, said = 0, 15 * n, True
            close()
            i += 3
        elif w == "half" and nxt == ["an", "hour"]:
            close()
            out.append("30")
            i += 2
        elif w in _DECIMAL and (said or w == "point") and nxt[:1] and nxt[0] in ONES[:10]:  # "point five": 0.5
            said = True
            digits = ""
            while i + 1 < len(words) and words[i + 1] in ONES[:10]:
                digits += str(ONES.index(words[i + 1]))
                i += 1
            close(f".{digits}")
        else:  # any other word ends the number; "a" before a scale starts the next one ("forty two a hundred")
            close()
        i += 1
    close()
    return out


def _cents(words: list[str]) -> tuple[int, int] | None:
    """The cents said right after a currency word and the words they take: "(and) seventy five (cents)" -> (75, 2).

    >>> _cents(["and", "fifty", "pence"]), _cents(["seventy", "five", "each"]), _cents(["five"]), _cents(["for"])
    ((50, 3), (75, 2), None, None)
    """
    n = 1 if words[:1] == ["and"] else 0
    tens = words[n] if n < len(words) else ""
    if _VALUES.get(tens, 0) < 10:  # "two dollars five" is rarely 2.05 (but "forty dollars twelve ways" reads 40.12)
        return None
    cents, n = _VALUES[tens], n + 1
    if cents >= 20 and n < len(words) and 0 < _VALUES.get(words[n], 0) < 10:
        cents, n = cents + _VALUES[words[n]], n + 1
    return cents, n + (n < len(words) and words[n] in ("cent", "cents", "pence", "p"))
