"""A user's own pictures as an image dataset: `config.data.name='images'`.

`load_image_folder(path, image_size, cache_dir)` turns the images that `path` names into
(train, test) uint8 arrays [N, image_size, image_size, 3], so that any image model trains
on them as on a standard dataset.

- Layout: `path` is a file, a folder or a glob, resolved as text corpora resolve theirs
  (`genjax.data.corpora`). A folder is searched recursively, skipping hidden files and
  folders, for files with an image extension (`IMAGE_EXTENSIONS`, any case); a glob such as
  'photos/**/*.jpg' takes every file it matches. There are no labels: subfolders only
  organise files.
- Split: each file goes to one side by a stable hash of its path relative to the root (the
  folder, or for a glob the folder before its first wildcard), as corpora split files. So
  the split is the same in every run and process, a folder and a glob over it split alike,
  and a picture keeps its side when others are added. With few pictures a side can come out
  empty; then the picture with the lowest (highest) hash moves over, so that both sides have
  at least one. Fewer than 2 pictures is an error. Within a side, images are in path order.
- Resizing: each picture is converted to RGB (transparent pixels composited on white,
  16-bit grayscale scaled to 8 bits, EXIF rotation applied, animations give their first
  frame), resized so that its shorter side is `image_size`, and centre-cropped to a square.
- Cache: decoding thousands of photos takes minutes, so the arrays are saved as one .npz
  under `cache_dir`, named by a hash of the settings and of every file's path, size and
  modification time. A later run with the same files reads that and opens no image; any
  changed, added or removed file gives a new name, so a stale cache is never read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import tempfile
import zipfile

import numpy as np
from PIL import Image, ImageOps

from genjax.config import ConfigError
from genjax.data import corpora, files, image_sets
from genjax.data.spec import Dataset

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp')

# Part of the cache key: bump it whenever decoding changes (resampling, cropping, colour
# handling) so that arrays made the old way are not read back.
_CACHE_FORMAT = 1
_16BIT_MODES = ('I', 'I;16', 'I;16L', 'I;16B', 'I;16N')
_ALPHA_MODES = ('RGBA', 'RGBa', 'LA', 'La', 'PA')

_log = logging.getLogger(__name__)


def _image_files(path: str) -> tuple[pathlib.Path, list[str]]:
  """(root, sorted relative paths) of the images `path` (a file, folder or glob) names."""
  expanded = os.path.expanduser(path)
  is_dir = os.path.isdir(expanded)
  if not (is_dir or os.path.isfile(expanded) or corpora._is_glob(expanded)):
    raise files.DataError(
      f'config.data.path={path!r} is not a file, a folder or a glob '
      "pattern that exists; give your images' folder or a glob such as "
      "'photos/**/*.jpg'."
    )
  root, relpaths = corpora._user_files(path)
  if is_dir:
    relpaths = [r for r in relpaths if r.lower().endswith(IMAGE_EXTENSIONS)]
  if not relpaths:
    where = f'the folder {root}' if is_dir else 'the pattern'
    raise files.DataError(
      f'config.data.path={path!r} names no images: {where} has no files with the '
      f'extensions {", ".join(IMAGE_EXTENSIONS)} (any case). Check the path, or for a glob '
      "use ** to match files in subfolders, e.g. 'photos/**/*.jpg'."
    )
  return root, relpaths


def _cache_key(
  relpaths: list[str], root: pathlib.Path, image_size: int, val_fraction: float
) -> str:
  # The files' metadata, not their location: a folder copied with its times (rsync -a,
  # cp -p) to another place, e.g. a node's local disk, reuses the cache. Size and mtime to
  # the nanosecond catch edits without reading every file.
  h = hashlib.sha256(f'images v{_CACHE_FORMAT}\n{image_size}\n{val_fraction!r}\n'.encode())
  for rel in relpaths:
    st = os.stat(root / rel)
    h.update(f'{rel}\0{st.st_size}\0{st.st_mtime_ns}\n'.encode('utf-8', 'surrogateescape'))
  return h.hexdigest()


def _to_rgb(img: Image.Image) -> Image.Image:
  """`img` as 8-bit RGB: alpha over white, 16-bit grayscale scaled (PIL would clip it)."""
  if img.mode in _16BIT_MODES:
    gray = np.clip(np.asarray(img, dtype=np.float64), 0, 65535) / 257
    img = Image.fromarray(np.round(gray).astype(np.uint8))
  if img.mode in _ALPHA_MODES or 'transparency' in img.info:
    rgba = img.convert('RGBA')
    white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert('RGB')
  return img.convert('RGB')


def _resize_crop(img: Image.Image, image_size: int) -> np.ndarray:
  """The centre square of `img` scaled so that its shorter side is `image_size`."""
  w, h = img.size
  scale = image_size / min(w, h)
  new_w, new_h = max(image_size, round(w * scale)), max(image_size, round(h * scale))
  # LANCZOS: photos are mostly shrunk a lot, and its wide kernel averages away the detail
  # that would alias into moiré at the small size (BICUBIC is softer or aliases more). Its
  # cost is paid once, as the result is cached.
  img = img.resize((new_w, new_h), Image.Resampling.LANCZOS)
  left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
  return np.asarray(img.crop((left, top, left + image_size, top + image_size)), dtype=np.uint8)


def _decode(path: pathlib.Path, image_size: int) -> np.ndarray:
  try:
    with Image.open(path) as img:
      # For JPEG, decode at the smallest power-of-two reduction that keeps both sides at
      # least image_size (several times faster on camera photos); other formats ignore it.
      img.draft(None, (image_size, image_size))
      img = ImageOps.exif_transpose(img)  # phone photos store their rotation in EXIF
      return _resize_crop(_to_rgb(img), image_size)
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise files.DataError(
      f'Cannot read the image {path} ({type(e).__name__}: {e}); delete '
      'it or replace it with a valid image, then run again.'
    ) from e


def _decode_all(root: pathlib.Path, relpaths: list[str], image_size: int) -> np.ndarray:
  out = np.empty((len(relpaths), image_size, image_size, 3), np.uint8)
  for i, rel in enumerate(relpaths):
    out[i] = _decode(root / rel, image_size)
  return out


def _read_cache(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray] | None:
  try:
    with np.load(path, allow_pickle=False) as npz:
      return npz['train'], npz['test']
  except FileNotFoundError:
    return None
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    _log.warning('Ignoring the unreadable image cache %s (%s); decoding the images again.', path, e)
    return None


def _write_cache(path: pathlib.Path, train: np.ndarray, test: np.ndarray) -> None:
  # A temporary file in the same folder, then an atomic rename: a run killed mid-write, or
  # another process reading at the same time, never sees a partial cache.
  fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.part', dir=path.parent)
  try:
    with os.fdopen(fd, 'wb') as f:
      np.savez(f, train=train, test=test)
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise


def load_image_folder(
  path: str, image_size: int, cache_dir: pathlib.Path, val_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
  """(train, test): uint8 [N, image_size, image_size, 3] arrays of the images `path` names."""
  if (
    isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1
  ):
    raise ConfigError(
      f'config.data.image_size={image_size!r} must be a positive integer: '
      'the side in pixels of the square images the model sees, e.g. 64.'
    )
  image_size = int(image_size)
  if not 0 < val_fraction < 1:
    raise ConfigError(
      f'config.data.val_fraction={val_fraction} must be in (0, 1): both the '
      'training and the test side need images.'
    )
  if not path:
    raise ConfigError(
      "config.data.name='images' needs config.data.path: a folder of images or "
      "a glob such as 'photos/**/*.jpg'."
    )
  root, relpaths = _image_files(path)
  if len(relpaths) < 2:
    raise files.DataError(
      f'config.data.path={path!r} names 1 image ({root / relpaths[0]}); '
      'the training and the test side need one each: give at least 2.'
    )
  train_rel, test_rel = corpora.split_files(relpaths, val_fraction)
  train_rel, test_rel = sorted(train_rel), sorted(test_rel)

  cache_dir = pathlib.Path(cache_dir).expanduser()
  cache_path = cache_dir / f'images-{_cache_key(relpaths, root, image_size, val_fraction)}.npz'
  cached = _read_cache(cache_path)
  if cached is not None:
    train, test = cached
    how = f'read from the cache {cache_path}'
  else:
    train = _decode_all(root, train_rel, image_size)
    test = _decode_all(root, test_rel, image_size)
    try:
      cache_dir.mkdir(parents=True, exist_ok=True)
      _write_cache(cache_path, train, test)
      how = f'decoded and cached in {cache_path}'
    except OSError as e:  # a read-only or full disk costs a re-decode next time, no more
      _log.warning('Cannot write the image cache %s (%s).', cache_path, e)
      how = 'decoded (not cached)'
  _log.info(
    'Images %r: %d training and %d test images of %dx%d from %s, %s.',
    path,
    len(train),
    len(test),
    image_size,
    image_size,
    root,
    how,
  )
  return train, test


# The dataset registered as 'images' (genjax.data.datasets): any image family trains on
# a user's pictures with --config.data.name=images --config.data.path='photos/**/*.jpg'.


def add_config_fields(c) -> None:
  image_sets.add_config_fields(c)


def dataset(data, workdir: str | None = None) -> Dataset:
  """The pictures `data.path` names at `data.image_size` (default 64), unlabelled."""
  image_sets.refuse(data, 'digits', 'binarize', 'num_anomaly')
  if not data.path:
    raise ConfigError(
      "config.data.path is empty: the images dataset needs a folder or a "
      "glob of pictures, e.g. --config.data.path='my_photos/**/*.jpg'."
    )
  cache = files.resolve_data_dir(data.dir) / 'images-cache'
  train, test = load_image_folder(data.path, data.image_size or 64, cache, data.val_fraction)
  return image_sets.finish(data, {'train': {'image': train}, 'test': {'image': test}}, workdir)
