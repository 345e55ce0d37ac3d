r"""English -> German translation on Multi30k: experiments/multi30k_de_en.py the other way.

python -m launch.main --config=experiments/multi30k_en_de.py:cpu --workdir=runs/en_de
python -m launch.evaluate --workdir=runs/en_de --beam=5 --alpha=0.6
python -m launch.sample --workdir=runs/en_de --input="A man rides a bike."
"""

from experiments.multi30k_de_en import translation_config


def get_config(size: str = 'default'):
  return translation_config('en', 'de', size)
