import pytest

from skillcall.numbers import number_words, spoken_numbers


@pytest.mark.parametrize(
    "text, numbers",
    [
        ("compute two hundred minus sixty three", ["200", "63"]),
        ("fifteen hundred times twelve how much is that", ["1500", "12"]),
        ("eight hundred and seventy six thousand plus two hundred thousand equals what", ["876000", "200000"]),
        ("what's the total of nineteen and thirty one", ["19", "31"]),
        ("nine to the power of zero point five", ["9", "0.5"]),
        ("i'm crashing for two hours and ten minutes", ["2", "10"]),
        ("an hour and a half", []),  # no number word: "an hour" is a duration, not a number
        ("two and a half hours", ["2.5"]),
        ("a hundred and five", ["105"]),
        ("the year two thousand and five", ["2005"]),
        ("twenty twenty four", ["20", "24"]),  # read as said: two numbers
        ("what's 12 times 4.5", ["12", "4.5"]),
        ("How much is 6.5% sales tax on $2,400?", ["6.5", "2400"]),
        ("1,250,000 divided by 4, 2, 3", ["1250000", "4", "2", "3"]),
        ("nought point five times sixty", ["0.5", "60"]),
        ("point zero five multiplied by eight hundred", ["0.05", "800"]),
        ("seven comma five plus two comma three", ["7.5", "2.3"]),  # the decimal comma, said
        ("how many eggs are in seven dozen", ["7", "12"]),  # said as 7*12
        ("half a dozen times a dozen", ["6", "12"]),
        ("wake me in three quarters of an hour", ["45"]),  # the timer's minutes, not 3
        ("a quarter of an hour then half an hour", ["15", "30"]),
        ("what's three quarters of sixty", ["3", "60"]),  # a fraction of a number stays as said
        ("four and a quarter minus one and three quarters", ["4.25", "1.75"]),
        ("a flat white is a dollar seventy five what do five cost", ["1.75", "5"]),  # money: dollars.cents
        ("two pounds and fifty pence times three, one euro twenty", ["2.5", "3", "1.2"]),
        ("five notebooks at three dollars and two pens", ["5", "3", "2"]),  # "and two" is no price
        ("jake owes me twenty dollars, twelve quid for the tickets", ["20", "12"]),
        ("a tenner plus two fivers", ["10", "2", "5"]),  # "two fivers" is said as 2*5
        ("five grand split four ways, the grand canyon", ["5000", "4"]),
        ("thanks, that was great", []),
        ("a cat and a dog", []),
    ],
)
def test_spoken_numbers(text, numbers):
    assert spoken_numbers(text) == numbers


def test_every_spoken_form_of_the_augmenter_reads_back_as_its_number():
    for n in [*range(0, 1200), 1500, 2030, 2500, 9999, 12345, 876000, 999999]:
        for form in number_words(str(n)):
            assert spoken_numbers(form) == [str(n)], form
    for text in ("2.5", "0.25", "13.5"):
        for form in number_words(text):
            assert spoken_numbers(form) == [text], form
