"""`parse_rate`: does a code model complete held-out function headers into valid Python?

The prompts are the `def` lines of functions in the validation files (never trained
on). A completion is cut where the function ends (the first non-blank line indented
less than the body's first line) or where generation stopped, minus a last line that
generation cut off mid-way; the header plus that body must then pass `ast.parse`. A model that
has learned indentation, brackets and statements scores near 1; random tokens score 0.
"""

from __future__ import annotations

import ast
import random
import textwrap
from typing import Callable, Iterable, Sequence


def function_headers(texts: Iterable[str], num: int, seed: int = 0) -> list[str]:
  """Up to `num` function headers (`def ...:` lines, dedented), drawn with `seed`.

  Only headers whose signature ends on a line of its own are taken, so the prompt is
  exactly the header and the body is left to the model.
  """
  headers = []
  for text in texts:
    try:
      tree = ast.parse(text)
    except (SyntaxError, ValueError):  # e.g. a Python 2 file in a test corpus
      continue
    lines = text.splitlines()
    for node in ast.walk(tree):
      if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not node.body:
        continue
      start = node.lineno - 1
      end = node.body[0].lineno - 1  # the header's lines: start .. end - 1
      if end <= start or node.body[0].lineno == node.lineno:  # one-line `def f(): pass`
        continue
      header = '\n'.join(lines[start:end]).rstrip()
      if not header.endswith(':') or '#' in header.splitlines()[-1]:
        continue
      headers.append(textwrap.dedent(header) + '\n')
  rng = random.Random(seed)
  rng.shuffle(headers)
  return headers[:num]


def _indent(line: str) -> int:
  return len(line) - len(line.lstrip(' \t'))


def cut_completion(completion: str, finished: bool) -> str:
  """The function body a completion proposes (see the module docstring).

  The body's indentation is that of its first non-blank line; the function ends at the
  first non-blank line indented less (a model that writes a method body, then the next
  method one level out, has finished the function there).
  """
  lines = completion.split('\n')
  if not finished and len(lines) > 1:
    lines = lines[:-1]  # generation stopped mid-line
  body, body_indent = [], None
  for line in lines:
    if line.strip():
      if body_indent is None:
        body_indent = _indent(line)
      elif _indent(line) < body_indent:
        break
    body.append(line)
  return '\n'.join(body).rstrip() + '\n'


def parses(header: str, body: str) -> bool:
  try:
    ast.parse(header + body)
    return True
  except (SyntaxError, ValueError):  # ValueError: source with null bytes
    return False


def parse_rate(
  headers: Sequence[str], complete: Callable[[str], tuple[str, bool]]
) -> dict[str, float]:
  """Share of headers whose completion parses; `complete(header) -> (text, finished)`."""
  if not headers:
    raise ValueError(
      'parse_rate needs at least one function header; the validation files held none.'
    )
  ok = 0
  for header in headers:
    completion, finished = complete(header)
    ok += parses(header, cut_completion(completion, finished))
  return {'parse_rate': ok / len(headers), 'parse_headers': float(len(headers))}
