"""Distinct-n (Li et al., "A Diversity-Promoting Objective Function for Neural
Conversation Models", 2016): the share of a set of texts' word n-grams that are distinct.

A model that answers everything with "i don't know" scores near 0; human replies score
high. Texts are lowercased and split into words and punctuation marks; n-grams do not
cross from one text to the next. The value falls as the texts get longer, so compare sets
of replies to the same contexts (sampled against human), and read it beside their length.
"""

from __future__ import annotations

import re
from typing import Iterable

_WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def words(text: str) -> list[str]:
  """Lowercased words (with their apostrophes: "don't") and punctuation marks."""
  return _WORD.findall(text.lower())


def distinct_n(texts: Iterable[str], n: int) -> float:
  """Distinct word n-grams / all word n-grams of `texts`; 0 when there are none."""
  if n < 1:
    raise ValueError(f'n must be >= 1, got {n}')
  seen, total = set(), 0
  for text in texts:
    tokens = words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    seen.update(grams)
    total += len(grams)
  return len(seen) / total if total else 0.0
