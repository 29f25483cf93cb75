"""Generated demo data: a loan-default table with numeric and categorical columns and a binary target, and a
house-price table with a continuous target (regression)."""
from __future__ import annotations

import csv
import io
import math
import random

COLUMNS = ["age", "income", "loan_amount", "credit_history_months", "employment", "region", "default"]


def loan_rows(n: int, seed: int = 0, income_shift: float = 0.0, concept: int = 1) -> list[list[object]]:
    """concept 2 is a changed world: lenders in the south now default far more often, and the loan-to-income
    ratio matters less. Same columns; a model of concept 1 is wrong about many of its rows."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        age = rng.randint(21, 70)
        income = round(rng.lognormvariate(10.6 + income_shift, 0.4), 2)
        loan = round(rng.uniform(1_000, 40_000), 2)
        history = rng.randint(0, 480)
        employment = rng.choice(["salaried", "self-employed", "contract", "unemployed"])
        region = rng.choice(["north", "south", "east", "west"])
        risk = 2.2 * loan / income - 0.004 * history - 0.01 * (age - 40) + (1.2 if employment == "unemployed" else 0)
        if concept == 2:
            risk = 0.8 * loan / income - 0.002 * history + (1.5 if region == "south" else -0.3)
        default = int(rng.random() < 1 / (1 + math.exp(-4 * (risk - 0.8))))
        rows.append([age, income, loan, history, employment, region, default])
    return rows


def loan_csv(n: int, seed: int = 0, income_shift: float = 0.0, concept: int = 1) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(loan_rows(n, seed, income_shift, concept))
    return out.getvalue().encode()


HOUSE_COLUMNS = ["area_m2", "rooms", "age_years", "distance_km", "region", "price"]
REGION_PRICE = {"north": 1.0, "south": 0.85, "east": 1.1, "west": 1.25}


def house_rows(n: int, seed: int = 0, area_shift: float = 0.0) -> list[list[object]]:
    """Prices in thousands: larger, newer and closer homes cost more, by region. `area_shift` moves the size
    of the homes on the market (a data drift the model has not seen)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        area = round(max(25.0, rng.gauss(95 + area_shift, 30)), 1)
        rooms = max(1, min(8, round(area / 28 + rng.gauss(0, 0.7))))
        age = rng.randint(0, 90)
        distance = round(rng.expovariate(1 / 12), 1)
        region = rng.choice(list(REGION_PRICE))
        price = (2.4 * area + 18 * rooms - 0.9 * age - 4.5 * math.sqrt(distance)) * REGION_PRICE[region]
        rows.append([area, rooms, age, distance, region, round(price + rng.gauss(0, 15), 1)])
    return rows


def house_csv(n: int, seed: int = 0, area_shift: float = 0.0) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HOUSE_COLUMNS)
    writer.writerows(house_rows(n, seed, area_shift))
    return out.getvalue().encode()
