from pathlib import Path

import pytest

from skillcall.calls import parse_call
from skillcall.durations import duration
from skillcall.examples import read_examples_dir


@pytest.mark.parametrize(
    ("said", "length"),
    [
        ("set a timer for ten minutes", "10 minutes"),
        ("can you set a timer for an hour and twenty minutes for the chicken", "1 hour 20 minutes"),
        ("can't talk i'm cooking hey google an hour and forty on the brisket", "1 hour 40 minutes"),
        ("timer one hour fifteen", "1 hour 15 minutes"),
        ("please start a countdown of ninety seconds", "90 seconds"),  # kept in the unit said
        ("a hundred and fifty seconds on the pancakes", "150 seconds"),
        ("twenty one minutes", "21 minutes"),  # "one" ends a number here, it is no "a"
        ("set a six and a half minute timer", "6 minutes 30 seconds"),
        ("two and three quarter hours", "2 hours 45 minutes"),
        ("ping me in an hour and three quarters", "1 hour 45 minutes"),
        ("an hour and a quarter on the pork shoulder", "1 hour 15 minutes"),
        ("half an hour", "30 minutes"),
        ("three quarters of an hour", "45 minutes"),
        ("set a quarter hour timer", "15 minutes"),
        ("meditating for a half hour", "30 minutes"),
        ("a couple of minutes on the grill", "2 minutes"),
        ("Set a timer for 1h 30m.", "1 hour 30 minutes"),
        ("Can you set a timer for 2 1/2 minutes?", "2 minutes 30 seconds"),
        ("timer for 40min", "40 minutes"),
        ("one minute and thirty seconds", "1 minute 30 seconds"),
        ("two hours and five minutes and ten seconds", "2 hours 5 minutes 10 seconds"),
        ("set a timer for ten minutes no make it fifteen", "15 minutes"),  # said last
        ("Set a timer for 40 min, no wait, 35.", "35 minutes"),
        ("timer for six minutes for the tea actually make it four", "4 minutes"),  # taken back after other words
        ("timer for twenty five min uh make that thirty", "30 minutes"),  # "make that" takes back too
        ("timer for five minutes for the two of us", "5 minutes"),  # a number after the length, nothing taken back
        ("ten minutes then another five minutes", "5 minutes"),  # two lengths: the last
        ("what's the weather like in berlin", None),
        ("set a timer", None),
        ("i have 5 m of rope", None),  # "m" is minutes only written onto the number ("30m")
    ],
)
def test_duration(said, length):
    assert duration(said) == length


def test_the_reading_of_the_shipped_timer_examples_is_their_duration():
    """A hint is only worth its line if it is right: on every hand-written timer example it reads the duration
    the example is labelled with."""
    _, files = read_examples_dir(Path(__file__).parent.parent / "examples")
    timers = [pair for f in files for pair in f.examples if parse_call(pair.answer).name == "timer"]
    assert len(timers) >= 300
    wrong = [
        (p.user, p.answer, duration(p.user))
        for p in timers
        if parse_call(p.answer).args != (("duration", duration(p.user)),)
    ]
    assert wrong == []
