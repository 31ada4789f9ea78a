"""Who an utterance is said to, when it is plainly a person in the room: a hint for the model.

A 135M model reads "mike what time does the game start" as a time request; the name in front says it is talk
to someone else (``other()``). :func:`addressee` finds such a vocative: a person's name or a family word as the
first word after hesitations and openers ("so um kids ...", "hey mike ..."), or a family word as the last word
("... over there grandpa"). A wake word anywhere means the assistant is addressed ("alexa tell mike ...",
"kids one sec alexa what time is it"): no hint. Names that are also common words or places ("will", "mark",
"austin") are not in the list. A first word followed by a verb of its own is the subject ("anna has four times
as many"), unless a pronoun follows the verb ("mum is it cold", "ben did you see": a question put to them); a
last word after a preposition, a possessive or a verb of calling is inside the request ("a story for grandpa",
"remind me to call mum"). Neither is a vocative.

    >>> addressee("hey mike what time does the game start tonight")
    'mike'
    >>> addressee("what time is it over there in melbourne grandpa")
    'grandpa'
    >>> addressee("alexa tell mike dinner is ready") is None
    True
    >>> addressee("Babe, can you time 12 minutes on your phone?")
    'babe'
"""

from __future__ import annotations

from skillcall.calls import HESITATIONS, words

# family words and endearments said to a person; "baby", "love", "dear", "bro" are left out (also said to assistants
# or inside requests: "a lullaby for the baby", "love stories")
FAMILY = frozenset(
    "mum mom mommy mummy mam mama dad daddy papa pops grandma grandpa granny gran grandad granddad nana nan "
    "grandmother grandfather babe honey hon darling sweetie sweetheart kids guys everyone everybody son "
    "auntie aunty uncle".split()
)
# given names that are not also everyday words or places (no will, mark, grace, jack, austin, paris, ...)
NAMES = frozenset(
    """
    aaron abdul adam adrian ahmed aisha alan albert alex alexander alfie ali alice alison amanda amelia amir amy
    andrea andrew andy angela anna anne annie anthony anton arjun arthur ava barbara ben benjamin beth bethany bram
    brian caleb callum carl carlos carmen caroline carol catherine charlie chloe chris christine claire colin connor
    craig daniel danny darren dave david debbie declan deepak derek diana diego dimitri dylan ed eddie edward eleanor
    elena eli elijah ella ellie emily emma eric erin ethan eva evan fatima felix finn fiona freddie freya gary gavin
    george gerald gianni graham greta hamza hannah harriet harry harvey hassan helen henry hugo ian imran isaac
    isabel isabella isla ivan jacob jake james jamie jane janet jasmine jason jeff jennifer jenny jeremy jess
    jessica jim jimmy joe joel john jonathan jordan jorge jose joseph josh joshua julia julie karen kate katie kevin
    kieran kyle laura lauren leah leo liam linda lisa logan lorenzo louis louise lucas lucy luis luke maria mariam
    martin mary matt matthew maya megan mia michael michelle mike mohammed monica nadia naomi natalie nathan neil
    nick nicola noah nora oliver olivia omar oscar owen paul paula pedro peter philip priya rachel rahul raj rebecca
    richard rita robert ryan sam samuel sandra sara sarah scott sean sebastian simon sofia sophie stephen steve
    steven stuart susan tanya theo thomas tim timmy tom tommy tony tyler victor vikram vincent wendy yusuf zach
    zara zoe
    """.split()
)
_PRONOUNS = frozenset("it you he she they we i there that this me us them".split())
WAKE = frozenset("alexa siri google computer assistant cortana jarvis".split())
# words said before the first word that counts: hesitations and openers ("so", "okay", "i mean")
OPENERS = HESITATIONS | frozenset("so ok okay oh hey hi hello yo well right listen sorry wait i mean like and".split())
# a last word after one of these is inside the request ("a story for grandpa"), not said to someone
_BOUND = frozenset(
    "the a my your our his her their to for with about of at in on from like call text ring phone message email "
    "tell ask visit meet".split()
)
# a first word followed by one of these is the sentence's subject ("grandpa was born in ..."), not a vocative,
# unless a pronoun comes next: a question put to that person ("mum is it cold", "ben did you see")
_SUBJECT = frozenset(
    "has had have is was are were and needs needed wants wanted says said buys bought gets got gives gave makes made "
    "earns earned owes owed pays paid spends spent saves saved runs ran drives drove reads read scores scored "
    "weighs weighed turns turned will would did does".split()
)


def addressee(text: str) -> str | None:
    """The person ``text`` is said to (a vocative name or family word at its start or end), else None."""
    said = words(text)
    start = next((i for i, w in enumerate(said) if w not in OPENERS), None)
    if start is None or WAKE.intersection(said):
        return None
    first, verb, then = (said[start : start + 3] + ["", ""])[:3]
    if (first in NAMES or first in FAMILY) and (verb not in _SUBJECT or then in _PRONOUNS):
        return first
    if len(said) > 1 and said[-1] in FAMILY and said[-2] not in _BOUND:
        return said[-1]
    return None
