"""Corpus metrics of generated text: BLEU and chrF (sacreBLEU), smoothed BLEU-4, ROUGE-L.

Two BLEUs for translation, because the literature reports two:
- `tokenized_bleu`: BLEU on text that is already tokenized and lowercased (Moses tokens),
  n-grams taken as they are (`tokenize='none'`): what fairseq's and multi-bleu's scores
  on Multi30k are, and what papers on it compare.
- `sacrebleu_score`: sacreBLEU's own, on detokenized cased text with its standard 13a
  tokenizer, returned with its signature (Post 2018): the comparable figure across
  preprocessing choices, typically a few points below the first.

For code summaries, `smoothed_bleu4` is CodeXGLUE code-to-text's metric: sentence-level
BLEU-4 with add-one smoothing of the 2- to 4-gram precisions (Lin and Och 2004),
averaged over sentences, on lowercased text split at punctuation; `rouge_l` is the mean
ROUGE-L F-measure (`rouge-score`).
"""

from __future__ import annotations

import collections
import math
import re
from typing import Sequence


def tokenized_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """Corpus BLEU (0-100) of pre-tokenized text, split on whitespace only."""
  import sacrebleu  # pylint: disable=import-outside-toplevel (text families only)

  return float(
    sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize='none', force=True).score
  )


def sacrebleu_score(
  hypotheses: Sequence[str], references: Sequence[str], lowercase: bool = False
) -> tuple[float, str]:
  """sacreBLEU (0-100) on detokenized text, and its signature (which records `lowercase`:
  a model trained on lowercased text is scored case-insensitively, and says so)."""
  import sacrebleu  # pylint: disable=import-outside-toplevel

  metric = sacrebleu.BLEU(lowercase=lowercase)
  score = metric.corpus_score(list(hypotheses), [list(references)])
  return float(score.score), str(metric.get_signature())


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """chrF (0-100), sacreBLEU's character n-gram F-score."""
  import sacrebleu  # pylint: disable=import-outside-toplevel

  return float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)


# CodeXGLUE's normalization: spaces around punctuation, '.' and ',' split off unless
# between digits, '-' split after a digit.
_PUNCTUATION = [
  (re.compile(r'([\{-\~\[-\` -\&\(-\+\:-\@\/])'), r' \1 '),
  (re.compile(r'([^0-9])([\.,])'), r'\1 \2 '),
  (re.compile(r'([\.,])([^0-9])'), r' \1 \2'),
  (re.compile(r'([0-9])(-)'), r'\1 \2 '),
]


def _words(text: str) -> list[str]:
  text = text.replace('<skipped>', '').replace('-\n', '').replace('\n', ' ')
  text = text.replace('&quot;', '"').replace('&lt;', '<').replace('&gt;', '>').replace('&amp;', '&')
  text = f' {text.lower()} '
  for pattern, replacement in _PUNCTUATION:
    text = pattern.sub(replacement, text)
  return text.split()


def _ngrams(words: list[str], n: int) -> collections.Counter:
  return collections.Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def sentence_bleu4(hypothesis: str, reference: str) -> float:
  """One sentence's smoothed BLEU-4 (0-1), as CodeXGLUE scores it."""
  hyp, ref = _words(hypothesis), _words(reference)
  log_precision = 0.0
  for n in range(1, 5):
    guessed = max(len(hyp) - n + 1, 0)
    hyp_ngrams, ref_ngrams = _ngrams(hyp, n), _ngrams(ref, n)
    correct = sum(min(count, ref_ngrams[g]) for g, count in hyp_ngrams.items())
    smooth = 1 if n > 1 else 0
    tiny = 2.2250738585072014e-308  # keeps log(0) finite, as the reference script does
    log_precision += math.log(correct + smooth + tiny) - math.log(guessed + smooth + tiny)
  brevity = min(0.0, 1.0 - (len(ref) + 1) / (len(hyp) + 1))
  return math.exp(log_precision / 4 + brevity)


def smoothed_bleu4(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """The mean sentence-level smoothed BLEU-4 (0-100) of CodeXGLUE code-to-text."""
  if len(hypotheses) != len(references):
    raise ValueError(f'{len(hypotheses)} hypotheses for {len(references)} references')
  scores = [sentence_bleu4(h, r) for h, r in zip(hypotheses, references)]
  return 100.0 * sum(scores) / max(len(scores), 1)


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """The mean ROUGE-L F-measure (0-100), Google's rouge-score with stemming."""
  from rouge_score import rouge_scorer  # pylint: disable=import-outside-toplevel

  scorer = rouge_scorer.RougeScorer(['rougeL'], use_stemmer=True)
  scores = [scorer.score(r, h)['rougeL'].fmeasure for h, r in zip(hypotheses, references)]
  return 100.0 * sum(scores) / max(len(scores), 1)
