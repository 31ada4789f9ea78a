from pathlib import Path

import pytest

from skillcall.arithmetic import arithmetic
from skillcall.calls import parse_call
from skillcall.examples import read_examples_dir


@pytest.mark.parametrize(
    "said, expression",
    [
        ("hey computer six hundred and forty over thirty two", "640/32"),
        ("what's twelve and seven", "12+7"),
        ("two hundred and five and three", "205+3"),
        ("what is two and three quarters times four", "2.75*4"),
        ("um what's a hundred take away one", "100-1"),
        ("minus four times minus nine", "-4*-9"),
        ("What is -18/3?", "-18/3"),
        ("calc 17*23", "17*23"),
        ("ten to the power of three", "10**3"),
        ("the square root of one thousand and twenty four", "sqrt(1024)"),
        ("what's nine squared please", "9**2"),
        ("what's thirty five percent of nineteen hundred", "35/100*1900"),
        ("average of 88, 92, 79, 95?", "(88+92+79+95)/4"),
        ("what's the mean of three hundred four hundred and fifty and five hundred and twenty", "(300+450+520)/3"),
        ("take seventeen away from forty", "40-17"),
        ("what's the difference between nine and sixty", "60-9"),
        ("the difference between a hundred and five and six", "105-6"),  # "and" inside the first number
        ("multiply eleven by itself", "11*11"),
        ("the quotient of eighty one and nine", "81/9"),
        ("what do you get if you divide seventy by seven", "70/7"),
        ("hey google the cube root of eight", "8**(1/3)"),
        ("what's the square of fifteen", "15**2"),
        ("six minus two all squared", "(6-2)**2"),
        ("a twelve percent tip on thirty dollars", "12/100*30"),
        ("knock thirty percent off sixty", "60-30/100*60"),
        ("three fifths of twenty five", "3/5*25"),
        ("what's a quarter of sixty", "60/4"),
        ("triple fourteen", "14*3"),
        ("add up two four and eight", "2+4+8"),
        ("The sum of 1,250 and 3,400?", "1250+3400"),
        # steps one after another, in as few brackets as they need
        ("twelve minus five then divide by two", "(12-5)/2"),
        ("start with forty take off six and then halve it", "(40-6)/2"),
        ("multiply seven by three take away four and then square the result", "(7*3-4)**2"),
        ("half of fifty and then add nine to it", "50/2+9"),
        ("add two to eight then times that by five", "(8+2)*5"),
        # a conversion between exact units: down the units a product, up them a quotient
        ("how many seconds are in an hour", "60*60"),
        ("hey google how many minutes are there in a week", "7*24*60"),
        ("how many hours is four hundred and twenty minutes", "420/60"),
        ("convert two and a half hours to minutes", "2.5*60"),
        ("what's three kilos in grams", "3*1000"),
        ("how many quarts make a gallon", "4"),
        ("how many feet in a mile please", "5280"),  # the fewest steps: one of 5280, not 1760*3
        ("how many days is a hundred and seventy two thousand eight hundred seconds", "172800/(24*60*60)"),
        ("how many days in a month", None),  # up to years and down again: no exact conversion
        ("how many ounces in a cup", None),  # weight and volume: no way between them
        ("how many inches in a metre", None),  # metric and imperial are not joined
        ("how many minutes in five minutes", None),
        ("how many minutes until the game", None),
        # a rate said once, asked for over another period: the factors from its unit to the asked one
        ("if i save fifty dollars a week how much is that in a year", "50*52"),
        ("my rent is twelve hundred a month how much is that a year", "1200*12"),
        ("a tap drips twelve millilitres a minute how much is that in a day", "12*60*24"),
        ("i spend sixty dollars a week on food what's that per day", "60/7"),
        ("i earn twenty dollars an hour how much in an eight hour day", None),  # two numbers
        ("we practise three times a week how many is that in a month", None),  # weeks into months: not exact
        ("i sleep eight hours a day which is a third of my life", None),  # no question
        # an age from two numbers said: the sign from which way the years go
        ("in eight years i'll be forty how old am i now", "40-8"),
        ("five years ago i was twenty seven how old am i today", "27+5"),
        ("my nephew is twelve how old will he be in twenty five years", "12+25"),
        ("i'm forty how old was i ten years ago", "40-10"),
        ("my son was born in two thousand and fourteen how old will he be in twenty twenty seven", "2027-2014"),
        ("grandpa was born in nineteen forty one so how old does he turn in twenty twenty six", "2026-1941"),
        ("my brother's four years older than me and he's twenty six so what's my age", None),  # no "ago", no "in"
        ("how old is the universe", None),
        # a value said, then changed up or down, then asked for
        ("it was minus seven this morning and it's warmed up twelve degrees so what's the temperature now", "-7+12"),
        ("the thermometer said six and it fell ten degrees overnight what's it at", "6-10"),
        ("It was -20 this morning and rose 8.5 degrees. What's the temp now?", "-20+8.5"),
        ("it was three below zero then it rose eight and fell five what's the temperature", "-3+8-5"),
        ("it dropped four degrees what a cold night", None),  # no value before the change
        ("it was minus six at dawn and rose eight by ten am what is it now", None),  # "ten am" is no change
        # a score asked for as a percentage; an amount split some ways (the amount first)
        ("i got forty seven out of sixty on my quiz what's that as a percentage", "47/60*100"),
        ("hey what percentage is 18 out of 72", "18/72*100"),
        ("i got forty seven out of sixty on my quiz", None),  # no percentage asked
        ("nine out of ten dentists recommend it what percentage of twelve is that", None),  # three numbers
        ("the rent's two thousand one hundred split three ways", "2100/3"),
        ("split 84.60 between 3 people, how much is each share?", "84.6/3"),
        ("if twenty three hundred dollars is shared by twenty three people what does each get", "2300/23"),
        ("split it between the four of us", None),  # no amount
        ("split six ways the bill was ninety", None),  # the ways before the amount: not this form
        ("what's nine hundred divided by twelve uncle ray", None),  # said to someone else, no "split"
        # a self-correction: the words after it
        ("eight times four no wait eight times five", "8*5"),
        ("twenty percent of forty i mean thirty percent of forty", "30/100*40"),
        # not one operation on numbers: no reading
        ("a hundred and five", None),
        ("two and three quarters", None),
        ("five plus three times two", None),  # which first? (steps need a "then" or an order)
        ("it dropped four degrees then another six", None),
        ("What's 3.14 × 7²?", None),
        ("what's two point five million divided by five hundred", None),
        ("seven hundred um seven hundred and eight divided by twelve", None),
        ("the number to call is oh eight hundred double four nine", None),
        ("set a timer for ten minutes", None),
        ("what's the average rainfall in london", None),
        ("grandpa what's nineteen times four", None),
        ("i have no idea what twelve times four is", None),
        ("double check the timer", None),
        ("twenty percent of sixty sorry of eighty", None),  # the words after the correction are no operation
        # a tip, the bill said before or after it; the total when one is asked; dollars and cents run together
        ("what's a twenty percent tip on a forty five dollar bill", "20/100*45"),
        ("what would the tip be on forty two dollars at eighteen percent", "18/100*42"),
        ("we're leaving a twelve percent tip on sixty seven eighty how much is the tip", "12/100*67.8"),
        ("ok computer add an eighteen percent tip to ninety two forty", "92.4+18/100*92.4"),
        ("the bill is ninety six dollars plus a fifteen percent tip what's the total", "96+15/100*96"),
        ("the bill was ninety six forty plus a fifteen percent tip split between four of us", None),
        ("there's four of us and the bill was ninety six forty plus a fifteen percent tip", None),  # 4: whose?
        ("a twenty percent tip", None),
        ("my tip was twenty percent of the bill", None),
    ],
)
def test_arithmetic(said, expression):
    assert arithmetic(said) == expression


def test_the_reading_of_the_shipped_examples_is_their_answer():
    """The hint is only worth its line if it is right: every hand example it reads is a math example whose
    question is exactly that expression (a wrong reading would teach the model to copy a wrong one)."""
    _, files = read_examples_dir(Path(__file__).parent.parent / "examples")
    read = [(pair, arithmetic(pair.user)) for f in files for pair in f.examples]
    read = [(pair, expression) for pair, expression in read if expression]
    assert len(read) >= 200
    wrong = [pair.file for pair, expression in read if parse_call(pair.answer).args != (("question", expression),)]
    assert len(wrong) <= len(read) // 50, wrong
