"""The dataset registry's names: `config.data.name` -> the module that reads it.

Only this table lives here, apart from the machinery that uses it
(`genjax.data.datasets`), so that registering a dataset changes no code another dataset
runs: the result records (bench/records.py) leave this file out of what a measurement
depends on.
"""

DATASETS = {
  'mnist': 'genjax.data.mnist',
  'fashion-mnist': 'genjax.data.mnist',
  'fruits': 'genjax.data.fruits',
  'images': 'genjax.data.images',
  'tinyshakespeare': 'genjax.data.text',
  'python_stdlib': 'genjax.data.text',
  'text': 'genjax.data.text',
  'multi30k': 'genjax.data.multi30k',
  'stdlib_docstrings': 'genjax.data.docstrings',
  'stdlib_modules': 'genjax.data.stdlib_modules',
  'chitchat': 'genjax.data.chitchat',
  'jsb_chorales': 'genjax.data.jsb_chorales',
  'jsb_voices': 'genjax.data.jsb_chorales',
}
