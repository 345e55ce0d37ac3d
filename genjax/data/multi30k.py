"""Multi30k task 1 (Elliott et al. 2016): English descriptions of Flickr30k images and
their German translations, in either direction.

The raw (untokenized) gz text files of the standard splits, one sentence a line, line i
of `X.en` the pair of line i of `X.de`: train 29,000 pairs, val 1,014, test_2016_flickr
1,000 (the test set the literature reports). Verified by SHA-256 and downloaded from the
multi30k/dataset repository when missing. `val` is the split the loop watches during
training (`test` in the Dataset); `test_2016_flickr` is what `launch.evaluate` reports.

    --config.data.source_lang=en --config.data.target_lang=de    # English -> German
"""

from __future__ import annotations

import gzip

import ml_collections

from genjax.config import ConfigError
from genjax.data import text_pairs
from genjax.data.files import FileSpec, fetch_all, resolve_data_dir
from genjax.data.spec import Dataset

LANGUAGES = ('en', 'de')
SPLITS = {'train': 'train', 'test': 'val', 'test_2016_flickr': 'test_2016_flickr'}
_SHA256 = {  # of the .gz files as published (shared/data/README.md)
  'train.en.gz': 'd79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f',
  'train.de.gz': '726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6',
  'val.en.gz': '14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28',
  'val.de.gz': 'f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a',
  'test_2016_flickr.en.gz': '611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9',
  'test_2016_flickr.de.gz': '9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8',
}
_URL = (
  'https://raw.githubusercontent.com/multi30k/dataset/'
  'a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/'
)


def dataset_files() -> dict[str, FileSpec]:
  return {name: (sha, (_URL + name,)) for name, sha in _SHA256.items()}


def read_lines(path) -> list[str]:
  with gzip.open(path, 'rt', encoding='utf-8') as f:
    return f.read().rstrip('\n').split('\n')


def read_split(root, split: str, source_lang: str, target_lang: str) -> text_pairs.Split:
  """The raw texts of one published split ('train', 'val', 'test_2016_flickr')."""
  paths = fetch_all(resolve_data_dir(root), 'multi30k', dataset_files())
  sources = read_lines(paths[f'{split}.{source_lang}.gz'])
  targets = read_lines(paths[f'{split}.{target_lang}.gz'])
  if len(sources) != len(targets):
    raise ValueError(
      f'multi30k {split}: {len(sources)} {source_lang} lines, {len(targets)} {target_lang}'
    )
  return text_pairs.Split(sources, targets)


def add_config_fields(c: ml_collections.ConfigDict) -> None:
  text_pairs.add_config_fields(c)


def dataset(data: ml_collections.ConfigDict, workdir: str | None = None) -> Dataset:
  pair = (data.source_lang, data.target_lang)
  if set(pair) != set(LANGUAGES):
    raise ConfigError(
      f'config.data.source_lang={pair[0]!r} and target_lang={pair[1]!r}: Multi30k pairs '
      "'en' and 'de', one each way."
    )
  splits = {name: read_split(data.dir, published, *pair) for name, published in SPLITS.items()}
  return text_pairs.pair_dataset(splits, data, workdir, f'Multi30k {pair[0]}->{pair[1]}')
