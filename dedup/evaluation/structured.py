"""Structured pages: repetition that is the page's layout, not a body pasted twice.

A product grid repeats its delivery line under every item, a menu its side dishes, a TV
schedule its news bulletins every day, a questionnaire its answer scale after every question,
a listing its contact line, a meal plan its headings for each plan. Each page here is made
from such a template around text of its own (real sentences, ``data/sentences.json``, or
their first few words on half the pages, as terse grids have), and must not be flagged
``doubled_body``; the same page pasted twice must.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from dedup.evaluation import edits
from dedup.evaluation.cases import Case

STRUCTURED = "structured"
PAGES_PER_KIND = 4
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SCALE = ("Strongly agree", "Agree", "Neither agree nor disagree", "Disagree", "Strongly disagree")
SHIPPING = (
    "Free delivery in two days, free returns within thirty days.",
    "Order before noon and we ship today, with free returns for thirty days.",
)
NEWS = (
    "06:00 Morning News: the headlines, the weather and the traffic from across the region.",
    "13:00 Midday News: the headlines, the weather and the markets, with the sport at half past.",
    "19:00 Evening News: the day's stories from home and abroad, then the regional weather.",
)
SIDES = "Served with a choice of fresh bread, a seasonal salad or hand-cut fries."
CONTACT = "Contact the agent to arrange a viewing this week, evenings and weekends included."
WATER = "Drink at least eight glasses of water a day and take a short walk after each meal."
MEALS = ("Breakfast", "Lunch", "Dinner", "Snack")
NAMES = ("Alder", "Birch", "Cedar", "Delta", "Ember", "Fjord", "Garnet", "Harbor", "Iris",
         "Juniper", "Kestrel", "Linden", "Maple", "Nova", "Onyx", "Pine")  # fmt: skip
GOODS = ("lamp", "chair", "kettle", "backpack", "jacket", "speaker", "desk", "blender")
ROOMS = ("studio", "flat", "house", "loft", "cottage")


def _h(text: str, level: int = 3) -> str:
    return f"<h{level}>{text}</h{level}>"


def _p(text: str) -> str:
    return edits.as_html([text])


def _product_grid(rng: random.Random, say: Callable[[], str]) -> str:
    shipping = rng.choice(SHIPPING)
    items = []
    for _ in range(rng.randint(6, 12)):
        name = f"{rng.choice(NAMES)} {rng.choice(GOODS)} {rng.randint(100, 999)}"
        price = f"Price: {rng.randint(9, 400)}.99 EUR"
        items.append(_h(name) + _p(say()) + _p(shipping) + _p(price))
    return _h("Our bestsellers", 2) + "\n".join(items)


def _menu(rng: random.Random, say: Callable[[], str]) -> str:
    out = [_h("Menu", 2)]
    for section in ("Starters", "Mains", "Desserts"):
        out.append(_h(section))
        for _ in range(rng.randint(3, 5)):
            out.append(_h(f"{rng.choice(NAMES)} plate", 4) + _p(say()))
            if section == "Mains":
                out.append(_p(SIDES))
            out.append(_p(f"{rng.randint(6, 29)}.50"))
    return "\n".join(out)


def _schedule(rng: random.Random, say: Callable[[], str]) -> str:
    out = [_h("This week on Channel One", 2)]
    for day in DAYS:
        out.append(_h(day))
        slots = [(6, NEWS[0]), (13, NEWS[1]), (19, NEWS[2])]
        for hour in rng.sample([8, 9, 10, 11, 15, 16, 17, 21, 22], rng.randint(3, 5)):
            slots.append((hour, f"{hour:02d}:00 {rng.choice(NAMES)} Hour: {say()}"))
        out.extend(_p(line) for _, line in sorted(slots))
    return "\n".join(out)


def _questionnaire(rng: random.Random, say: Callable[[], str]) -> str:
    scale = "<ul>" + "".join(f"<li>{option}</li>" for option in SCALE) + "</ul>"
    out = [_h("Reader survey", 2)]
    for number in range(1, rng.randint(8, 12) + 1):
        out.append(_p(f"Question {number}. How far do you agree: {say()}") + scale)
    return "\n".join(out)


def _listing(rng: random.Random, say: Callable[[], str]) -> str:
    out = [_h("Homes for rent", 2)]
    for _ in range(rng.randint(6, 10)):
        rooms = f"{rng.randint(1, 5)} bedrooms, {rng.randint(1, 3)} bathrooms, "
        rooms += f"{rng.randint(30, 180)} square metres"
        title = f"{rng.choice(NAMES)} Street {rng.randint(1, 90)}: {rng.choice(ROOMS)}"
        out.append(_h(title) + _p(rooms) + _p(say()) + _p(CONTACT))
    return "\n".join(out)


def _meal_plan(rng: random.Random, say: Callable[[], str]) -> str:
    out = [_h("Four plans for a lighter week", 2), _p(say())]
    for plan in "ABCD":
        out.append(_h(f"Plan {plan}"))
        for meal in MEALS:
            out.append(_h(meal, 4) + _p(say()))
        out.append(_p(WATER))
    return "\n".join(out)


KINDS: dict[str, Callable[[random.Random, Callable[[], str]], str]] = {
    "product_grid": _product_grid,
    "menu": _menu,
    "schedule": _schedule,
    "questionnaire": _questionnaire,
    "listing": _listing,
    "meal_plan": _meal_plan,
}


def _teller(sentences: list[str], rng: random.Random, terse: bool) -> Callable[[], str]:
    """Each call gives another of the sentences (its first few words when ``terse``)."""
    pool = rng.sample(sentences, len(sentences))

    def say() -> str:
        sentence = pool.pop() if pool else "Details to follow."
        return edits.first_words(sentence, rng.randint(3, 8)) if terse else sentence

    return say


def build(sentences: list[str], seed: int) -> list[Case]:
    """:data:`PAGES_PER_KIND` pages of each kind, their own text drawn from ``sentences``;
    each page also pasted twice."""
    out: list[Case] = []
    number = 0
    for kind, make in KINDS.items():
        for page in range(PAGES_PER_KIND):
            rng = random.Random(f"{seed}:structured:{kind}:{page}")
            # half the pages: a few words of their own per item
            say = _teller(sentences, rng, terse=page % 2 == 1)
            html = make(rng, say)
            for variant, body in (("page", html), ("doubled", html + "\n" + html)):
                case = Case(f"{variant}.{kind}.{page}", STRUCTURED, variant, number, number, body)
                case.language = kind
                out.append(case)
            number += 1
    return out
