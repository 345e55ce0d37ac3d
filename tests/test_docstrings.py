"""The stdlib docstrings data: functions found with ast, the baselines, and the hints a
summarizer's source may carry (the name as words, the nearest training summary)."""

import ml_collections

from genjax.data import docstrings
from genjax.data.docstrings import Function
from genjax.tasks import seq2seq

MODULE = '''
import os


@staticmethod
def join_all(parts):
    """Join the parts into one path.

    More text.
    """
    return os.path.join(*parts)


class Box:
    def getSize(self):
        """Return the size of the box."""
        return self.size

    def undocumented(self):
        return 1
'''


def test_functions_drop_the_docstring_keep_decorators_and_dedent_methods():
  found = docstrings.functions(MODULE)
  assert [f.name for f in found] == ['join_all', 'getSize', 'undocumented']
  join_all, get_size, undocumented = found
  assert join_all.summary == 'Join the parts into one path.'
  assert join_all.code == '@staticmethod\ndef join_all(parts):\n    return os.path.join(*parts)'
  assert get_size.code == 'def getSize(self):\n    return self.size'
  assert undocumented.summary == ''
  assert docstrings.functions('def broken(:\n') == []


def test_name_words_split_snake_and_camel_case():
  assert docstrings.name_words('get_close_matches') == 'get close matches'
  assert docstrings.name_words('getSize') == 'get size'
  assert docstrings.name_words('__init__') == 'init'


TRAIN = [
  Function('open_file', 'def open_file(path):\n  return open(path)', 'Open a file.', 'a.py'),
  Function('read_file', 'def read_file(path):\n  return open(path).read()', 'Read it.', 'a.py'),
  Function('add', 'def add(x, y):\n  return x + y', 'Add two numbers.', 'b.py'),
]


def test_nearest_summary_is_the_training_function_sharing_the_most_words():
  queries = [
    Function('plus', 'def plus(x, y):\n  return x + y', '', 'c.py'),
    Function('slurp', 'def slurp(path):\n  return open(path).read()', '', 'c.py'),
  ]
  assert docstrings.nearest_summaries(TRAIN, queries) == ['Add two numbers.', 'Read it.']


def test_a_training_functions_neighbour_comes_from_another_file():
  neighbours = docstrings.Neighbours(TRAIN)
  codes = [f.code for f in TRAIN]
  # Without the file rule each function would find itself.
  assert neighbours.summaries(codes) == [f.summary for f in TRAIN]
  found = neighbours.summaries(codes, [f.file for f in TRAIN])
  assert found[0] != 'Open a file.' and found[1] != 'Read it.'
  assert found[2] in ('Open a file.', 'Read it.')


def _data(**fields):
  c = ml_collections.ConfigDict({'data': {'name': 'stdlib_docstrings'}})
  docstrings.add_config_fields(c)
  c.data.update(fields)
  return c.data


def test_hinted_sources_put_the_hints_ahead_of_the_code(monkeypatch):
  monkeypatch.setattr(docstrings, '_train_neighbours', lambda _: docstrings.Neighbours(TRAIN))
  query = Function('slurp', 'def slurp(path):\n  return open(path).read()', 'Slurp.', 'c.py')
  by_split = {'train': TRAIN, 'test': [query]}
  plain = docstrings._hinted_sources(_data(), by_split)
  assert plain['test'] == [query.code] and plain['train'] == [f.code for f in TRAIN]
  hinted = docstrings._hinted_sources(_data(name_hint=True, retrieval_hint=True), by_split)
  assert hinted['test'] == [f'# slurp\n# like: Read it.\n{query.code}']
  assert not hinted['train'][1].startswith('# read file\n# like: Read it.')  # another file's


def test_sampling_prepares_raw_code_as_training_prepared_it(monkeypatch):
  monkeypatch.setattr(docstrings, '_train_neighbours', lambda _: docstrings.Neighbours(TRAIN))
  data = _data(name_hint=True, retrieval_hint=True)
  prepare = seq2seq._preparation(data)  # what launch.sample uses without the dataset
  assert isinstance(prepare, docstrings.CodePreparation)
  code = 'async def plusOne(x, y):\n  return x + y'
  assert prepare.source(code) == f'# plus one\n# like: Add two numbers.\n{code}'
  assert seq2seq._preparation(_data()).source(code) == code
