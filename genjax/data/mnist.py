"""MNIST and Fashion-MNIST, read from their published IDX gzip files.

Both datasets ship as the same four files, `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`,
in Yann LeCun's IDX format: a big-endian header (magic number, then one uint32 per
dimension) followed by the raw uint8 payload. The files are verified by SHA-256 and
downloaded when missing (see `files.fetch_all`).
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import pathlib
import zlib

import numpy as np

from genjax.config import ConfigError
from genjax.data import image_sets
from genjax.data.files import DataError, FileSpec, fetch_all, resolve_data_dir
from genjax.data.spec import Dataset

NAMES = ('mnist', 'fashion-mnist')
SPLITS = ('train', 'test')
IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_SIDE = 28
_NUM_CLASSES = 10
_SPLIT_PREFIX = {'train': 'train', 'test': 't10k'}

# SHA-256 of the .gz files as published (see shared/data/README.md).
_SHA256 = {
  'mnist': {
    'train-images-idx3-ubyte.gz': '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',  # noqa: E501
    'train-labels-idx1-ubyte.gz': '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',  # noqa: E501
    't10k-images-idx3-ubyte.gz': '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',  # noqa: E501
    't10k-labels-idx1-ubyte.gz': 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',  # noqa: E501
  },
  'fashion-mnist': {
    'train-images-idx3-ubyte.gz': '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84',  # noqa: E501
    'train-labels-idx1-ubyte.gz': 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845',  # noqa: E501
    't10k-images-idx3-ubyte.gz': '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073',  # noqa: E501
    't10k-labels-idx1-ubyte.gz': '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5',  # noqa: E501
  },
}
# Mirrors, tried in order (the original yann.lecun.com site is often unavailable).
_URL_BASES = {
  'mnist': (
    'https://storage.googleapis.com/cvdf-datasets/mnist/',
    'https://ossci-datasets.s3.amazonaws.com/mnist/',
  ),
  'fashion-mnist': ('http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',),
}


def dataset_files(name: str) -> dict[str, FileSpec]:
  """All four files of `name`: file name -> (sha256, download URLs)."""
  _check_choice('name', name, NAMES)
  return {
    file: (sha, tuple(base + file for base in _URL_BASES[name]))
    for file, sha in _SHA256[name].items()
  }


def parse_idx(raw: bytes, expected_magic: int, source: str = '<bytes>') -> np.ndarray:
  """Parses decompressed IDX bytes into a (read-only) uint8 array of the header's shape."""
  fix = f'{source} is not a valid IDX file; delete it so that it is downloaded again.'
  if len(raw) < 4:
    raise DataError(f'{fix} (only {len(raw)} bytes).')
  magic = int.from_bytes(raw[:4], 'big')
  if magic != expected_magic:
    raise DataError(f'{fix} (magic number {magic:#010x}, expected {expected_magic:#010x}).')
  ndim = raw[3]  # the magic's low byte is the number of dimensions
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise DataError(f'{fix} (header truncated: {len(raw)} bytes).')
  dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], 'big') for i in range(ndim))
  payload = math.prod(dims)
  if len(raw) != header + payload:
    raise DataError(
      f'{fix} (header says shape {dims}, i.e. {header + payload} bytes, but it holds {len(raw)}).'
    )
  return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_gz(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
  """Reads one gzip-compressed IDX file (the gzip header's name and time are ignored)."""
  try:
    raw = gzip.decompress(pathlib.Path(path).read_bytes())
  except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
    raise DataError(
      f'{path} is not a readable gzip file ({e}); delete it so that it is downloaded again.'
    ) from e
  return parse_idx(raw, expected_magic, source=str(path))


@functools.lru_cache(maxsize=4)
def _parse_split(
  images_path: str, labels_path: str, stat_key: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
  # stat_key (mtimes, sizes) keys the cache so that a replaced file is parsed again.
  del stat_key
  images = read_idx_gz(images_path, IMAGES_MAGIC)
  labels = read_idx_gz(labels_path, LABELS_MAGIC)
  if images.ndim != 3 or images.shape[1:] != (_SIDE, _SIDE):
    raise DataError(
      f'{images_path}: images have shape {images.shape}, expected '
      f'[N, {_SIDE}, {_SIDE}]; replace the file with the published one.'
    )
  if labels.ndim != 1 or len(labels) != len(images):
    raise DataError(
      f'{labels_path} holds {labels.shape} labels for {len(images)} images in '
      f'{images_path}; the two files do not belong together, replace them.'
    )
  if labels.size and int(labels.max()) >= _NUM_CLASSES:
    raise DataError(
      f'{labels_path}: label {int(labels.max())} is not a class in '
      f'0..{_NUM_CLASSES - 1}; replace the file with the published one.'
    )
  return images[..., None], labels.astype(np.int32)


def load_mnist(
  root: str | os.PathLike | None, name: str = 'mnist', split: str = 'train'
) -> tuple[np.ndarray, np.ndarray]:
  """Loads one split of MNIST or Fashion-MNIST.

  Args:
    root: data root; files are under `root/name/` (None: `resolve_data_dir(None)`).
    name: 'mnist' or 'fashion-mnist'.
    split: 'train' (60,000 examples) or 'test' (10,000).

  Returns:
    images uint8 [N, 28, 28, 1] (0 = background) and labels int32 [N] in 0..9; fresh,
    writable arrays.

  Raises:
    ValueError: unknown name or split.
    DataError: files missing and not downloadable, corrupt, or malformed.
  """
  _check_choice('name', name, NAMES)
  _check_choice('split', split, SPLITS)
  # All four files at once, so that a missing dataset is reported in one message.
  paths = fetch_all(resolve_data_dir(root), name, dataset_files(name))
  prefix = _SPLIT_PREFIX[split]
  images_path = paths[f'{prefix}-images-idx3-ubyte.gz']
  labels_path = paths[f'{prefix}-labels-idx1-ubyte.gz']
  stat_key = tuple(
    x for p in (images_path, labels_path) for x in (p.stat().st_mtime_ns, p.stat().st_size)
  )
  images, labels = _parse_split(str(images_path), str(labels_path), stat_key)
  # Copies: callers may modify their arrays without touching the in-process cache.
  return images.copy(), labels.copy()


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
  if value not in allowed:
    raise ValueError(f'Unknown {what} {value!r}; expected one of {allowed}.')


# The dataset registered as 'mnist' and 'fashion-mnist' (genjax.data.datasets).


def add_config_fields(c) -> None:
  image_sets.add_config_fields(c)


def dataset(data, workdir: str | None = None) -> Dataset:
  """MNIST or Fashion-MNIST (`data.name`): 60,000 training and 10,000 test images.

  With `data.digits`, training keeps those classes, the test split is their test images
  (a one-class model's loss is on its own class) and the other classes' test images
  form the anomaly split.
  """
  image_sets.refuse(data, 'image_size', 'path')
  root = resolve_data_dir(data.dir)
  train = image_sets.labelled(*load_mnist(root, data.name, 'train'))
  test = image_sets.labelled(*load_mnist(root, data.name, 'test'))
  if data.binarize:  # the whole test set, before any selection: the literature's bits
    test['image'] = image_sets.binarize_fixed(test['image'])
  splits = {'train': train, 'test': test}
  digits = tuple(data.digits)
  if digits:
    if not set(digits) <= set(range(_NUM_CLASSES)):
      raise ConfigError(f'config.data.digits={digits} must be classes in 0..9.')
    normal = np.isin(test['label'], digits)
    splits = {
      'train': image_sets.select(train, np.isin(train['label'], digits)),
      'test': image_sets.select(test, normal),
      'normal_test': image_sets.select(test, normal),
      'anomaly': image_sets.select(test, ~normal),
    }
  return image_sets.finish(data, splits, workdir, num_classes=_NUM_CLASSES)
