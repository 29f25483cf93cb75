"""Generated demo data: a loan-default table with numeric and categorical columns and a binary target."""
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
