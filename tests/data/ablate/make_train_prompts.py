#!/usr/bin/env python3
"""Writes the measurement (training) split of `quench ablate`'s small-model test:
weather_train.txt (A: weather questions, which models/gemma4-tiny-it declines) and other_train.txt
(B: other questions it answers), drawn with seed 4242 from the generators the small model's data
came from (tools/fixtures/small_model_data.py, training cities/templates only), excluding every
prompt of the held-out lists tests/data/small_model/weather.txt and other.txt.

Stdlib only; re-runnable: python3 tests/data/ablate/make_train_prompts.py
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures"))
import small_model_data as data  # noqa: E402

N = 64


def heldout(name):
    with open(os.path.join(ROOT, "tests", "data", "small_model", name)) as f:
        return {line.strip() for line in f if line.strip()}


def main():
    rng = random.Random(4242)
    held = heldout("weather.txt") | heldout("other.txt")
    weather, other = [], []
    while len(weather) < N:
        q = data.weather_question(rng, heldout=False)
        if q not in held and q not in weather and "\n" not in q:
            weather.append(q)
    while len(other) < N:
        q, _ = data._other_chat(rng)
        if q not in held and q not in other and "\n" not in q:
            other.append(q)
    for name, items in (("weather_train.txt", weather), ("other_train.txt", other)):
        with open(os.path.join(HERE, name), "w") as f:
            f.write("\n".join(items) + "\n")


if __name__ == "__main__":
    main()
