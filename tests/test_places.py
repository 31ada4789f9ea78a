"""The place hint: places spelled by their sound are found and spelled as the atlas spells them; everyday words
and talk without a place get no hint."""

import pytest

from skillcall.places import place, sound
from skillcall.prompting import Prompter, with_hints


@pytest.mark.parametrize(
    ("utterance", "named"),
    [
        ("whats the forcast for chatanooga", "Chattanooga"),  # by sound
        ("weather in kwala lumpur tomorrow", "Kuala Lumpur"),  # by sound, two words
        ("hell sinky what's the time over there", "Helsinki"),  # by sound, a common word in the span
        ("is it bright and sunny over in worchester today", "Worcester"),  # a close spelling
        ("what time is it in lewis ville", "Lewisville"),  # letters only: the space does not count
        ("is it raining in denver", "Denver"),  # an English word, but a big city
        ("do i need a jacket in new york", "New York"),  # spelled right, two words
        ("what's happening in burkina faso", "Burkina Faso"),  # a country
        ("what time is it on vancouver island", "Vancouver Island"),  # a word said after the name makes it another
        ("any rain due at lake como this week", "Lake Como"),  # ... or before it
        ("weather in new york city", "New York City"),  # the atlas has the whole name: no word added twice
        ("how cold is it in malmo today", "Malmo"),  # the atlas writes Malmö: looked up without its accents
        ("time in zurich please", "Zurich"),  # Zürich
        ("any snow up in tromso", "Tromso"),  # Tromsø: a letter NFKD does not split
        ("what time is it in toronno", "Toronto"),  # one slip: a letter changed
        ("what's the clock saying over in tuscon", "Tucson"),  # two letters swapped: not Tu Son (one left out, smaller)
        ("weather in sydeny tomorrow", "Sydney"),
        ("alexa what time is it in bang cock", "Bangkok"),  # English words that sound like a city of millions
        ("is it bedtime yet in mel born", "Melbourne"),
        ("what time is it in berlin no sorry in vienna", "Vienna"),  # the place said after a correction
        ("the time in um mumbai no actually delhi", "Delhi"),  # "no actually" corrects too
    ],
)
def test_a_place_is_spelled_as_the_atlas_spells_it(utterance, named):
    assert place(utterance) == named


@pytest.mark.parametrize(
    "utterance",
    [
        "is it going to be nice out this weekend",  # Nice, France: an everyday word
        "is there a hurricane coming",  # Hurricane, Utah: an English word and a small town
        "set a timer for ten minutes",
        "what time is it",
        "how do you say thank you in swahili",
        "hows the wether in town",  # one slip from Wetter, Germany: too small a town for a slip to name it
        "start a twenty five minute pomodoro",  # Comodoro: likewise
        "do i have any notes",  # "have any" sounds like Havana, but "have" is too everyday a word for a name
        "weather in denver no wait boulder",  # Denver was taken back; Boulder is an English word and a small town
        "",
    ],
)
def test_everyday_words_name_no_place(utterance):
    assert place(utterance) is None


def test_spellings_of_one_sound_share_a_key():
    assert sound("zurick") == sound("zurich") == "srk"
    assert sound("albuquerkey") == sound("albuquerque")
    assert sound("cancoon") == sound("cancun")


def test_the_hint_adds_the_place_line_and_names_the_place_for_the_copy_bias():
    assert with_hints("time in hell sinky", places=True) == "time in hell sinky\n(place: Helsinki)"
    assert with_hints("time in hell sinky", places=False) == "time in hell sinky"
    on = Prompter("raw", "", raw_template="{user} {answer}", places=True)
    assert on.prompt("time in hell sinky") == "time in hell sinky\n(place: Helsinki)"
    assert (on.place("time in hell sinky"), on.place("set a timer for ten minutes")) == ("Helsinki", "")
    assert Prompter("raw", "", raw_template="{user} {answer}").place("time in hell sinky") == ""
