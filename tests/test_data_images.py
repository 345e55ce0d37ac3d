"""Tests for genjax.data.images: a user's image folder as a dataset."""

import logging
import os
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

from genjax.config import ConfigError
from genjax.data import corpora, images
from genjax.data.files import DataError

SIZE = 16


def _noise(seed: int, shape: tuple[int, ...]) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def make_images(root: pathlib.Path) -> list[str]:
  """Mixed sizes, modes and formats, plus files a folder must skip; the image relpaths."""
  (root / 'sub' / 'deeper').mkdir(parents=True)
  (root / '.thumbs').mkdir()
  Image.fromarray(_noise(0, (30, 40, 3))).save(root / 'rgb.png')  # 40x30 RGB
  Image.fromarray(_noise(1, (50, 17))).save(root / 'sub' / 'gray.png')  # 17x50 L
  Image.fromarray(_noise(2, (64, 64, 4)), 'RGBA').save(root / 'sub' / 'alpha.PNG')
  Image.fromarray(_noise(3, (80, 100, 3))).save(root / 'photo.jpg', quality=90)  # 100x80
  Image.fromarray(_noise(4, (20, 20, 3))).convert('P').save(root / 'sub' / 'deeper' / 'pal.png')
  Image.fromarray(_noise(5, (33, 21, 3))).save(root / 'sub' / 'deeper' / 'wide.JPEG')
  Image.fromarray(_noise(6, (24, 24))).save(root / 'sub' / 'small.jpg')
  Image.fromarray(_noise(10, (30, 30, 3))).save(root / 'sub' / 'plain.bmp')
  Image.fromarray(_noise(7, (12, 12, 3))).save(root / '.hidden.png')
  Image.fromarray(_noise(8, (12, 12, 3))).save(root / '.thumbs' / 'thumb.png')
  (root / 'notes.txt').write_text('not an image')
  return sorted(
    [
      'rgb.png',
      'sub/gray.png',
      'sub/alpha.PNG',
      'photo.jpg',
      'sub/deeper/pal.png',
      'sub/deeper/wide.JPEG',
      'sub/small.jpg',
      'sub/plain.bmp',
    ]
  )


@pytest.fixture
def folder(tmp_path):
  root = tmp_path / 'photos'
  root.mkdir()
  return root, make_images(root)


def _expected(root: pathlib.Path, relpaths: list[str], size: int = SIZE) -> np.ndarray:
  return np.stack([images._decode(root / r, size) for r in sorted(relpaths)])


def test_shapes_dtypes_and_split(folder, tmp_path):
  root, relpaths = folder
  train, test = images.load_image_folder(str(root), SIZE, tmp_path / 'cache', val_fraction=0.3)
  assert train.dtype == test.dtype == np.uint8
  assert train.shape[1:] == test.shape[1:] == (SIZE, SIZE, 3)
  assert len(train) >= 1 and len(test) >= 1 and len(train) + len(test) == len(relpaths)
  # Each side is exactly the files the shared hash split puts there, in path order.
  train_rel, test_rel = corpora.split_files(relpaths, 0.3)
  np.testing.assert_array_equal(train, _expected(root, train_rel))
  np.testing.assert_array_equal(test, _expected(root, test_rel))


def test_split_is_stable_and_depends_only_on_relpath(folder, tmp_path):
  root, _ = folder
  first = images.load_image_folder(str(root), SIZE, tmp_path / 'c1', val_fraction=0.3)
  again = images.load_image_folder(str(root), SIZE, tmp_path / 'c2', val_fraction=0.3)
  # Elsewhere, under another name, with fresh file times: the same relpaths split alike.
  moved = tmp_path / 'elsewhere' / 'renamed'
  shutil.copytree(root, moved)
  there = images.load_image_folder(str(moved), SIZE, tmp_path / 'c3', val_fraction=0.3)
  for side in range(2):
    np.testing.assert_array_equal(first[side], again[side])
    np.testing.assert_array_equal(first[side], there[side])


def test_folder_and_glob_give_the_same_split_and_share_the_cache(folder, tmp_path, monkeypatch):
  root, relpaths = folder
  cache = tmp_path / 'cache'
  from_folder = images.load_image_folder(str(root), SIZE, cache, val_fraction=0.3)
  monkeypatch.setattr(images.Image, 'open', _no_open)
  from_glob = images.load_image_folder(
    f'{root}/**/*.[pjbPJB][npmNPM]*[gpGP]', SIZE, cache, val_fraction=0.3
  )
  for side in range(2):
    np.testing.assert_array_equal(from_folder[side], from_glob[side])
  assert len(list(cache.glob('*.npz'))) == 1


def test_both_sides_nonempty_with_two_images(tmp_path):
  root = tmp_path / 'two'
  root.mkdir()
  for i in range(2):
    Image.fromarray(_noise(i, (20, 20, 3))).save(root / f'{i}.png')
  for val_fraction in (0.01, 0.99):  # hashes alone would leave one side empty
    train, test = images.load_image_folder(str(root), 8, tmp_path / 'cache', val_fraction)
    assert len(train) == len(test) == 1


def _solid_thirds(w: int, h: int, colours, horizontal: bool) -> Image.Image:
  a = np.zeros((h, w, 3), np.uint8)
  n = w if horizontal else h
  for i, c in enumerate(colours):
    sl = slice(i * n // 3, (i + 1) * n // 3)
    if horizontal:
      a[:, sl] = c
    else:
      a[sl, :] = c
  return Image.fromarray(a)


@pytest.mark.parametrize('horizontal', [True, False])
def test_centre_crop_keeps_the_middle(tmp_path, horizontal):
  red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
  w, h = (96, 32) if horizontal else (32, 96)
  img = _solid_thirds(w, h, (red, green, blue), horizontal)
  img.save(tmp_path / 'thirds.png')
  out = images._decode(tmp_path / 'thirds.png', 8)
  assert out.shape == (8, 8, 3)
  mean = out.reshape(-1, 3).mean(axis=0)
  assert mean[1] > 200 and mean[0] < 40 and mean[2] < 40, mean
  # Away from the edges: green, but for the faint far lobes of LANCZOS's kernel.
  np.testing.assert_allclose(out[2:6, 2:6], np.broadcast_to(green, (4, 4, 3)), atol=2)


def test_modes_become_rgb(tmp_path):
  Image.new('RGBA', (10, 10), (255, 0, 0, 0)).save(tmp_path / 'clear.png')
  Image.new('LA', (10, 10), (0, 255)).save(tmp_path / 'la.png')
  Image.fromarray(np.full((10, 10), 65535, np.uint16)).save(tmp_path / 'deep.png')
  Image.new('RGB', (10, 10), (10, 20, 30)).convert('P').save(tmp_path / 'pal.gif')
  np.testing.assert_array_equal(images._decode(tmp_path / 'clear.png', 4), 255)  # on white
  np.testing.assert_array_equal(images._decode(tmp_path / 'la.png', 4), 0)
  np.testing.assert_array_equal(images._decode(tmp_path / 'deep.png', 4), 255)  # 16-bit white
  assert images._decode(tmp_path / 'pal.gif', 4).shape == (4, 4, 3)


def _no_open(*args, **kwargs):
  raise AssertionError('an image was opened; the cache should have been read')


def test_cache_hit_opens_no_image(folder, tmp_path, monkeypatch, caplog):
  root, _ = folder
  cache = tmp_path / 'new' / 'cache'
  with caplog.at_level(logging.INFO, logger=images.__name__):
    first = images.load_image_folder(str(root), SIZE, cache)
    assert 'decoded' in caplog.text
    caplog.clear()
    monkeypatch.setattr(images.Image, 'open', _no_open)
    second = images.load_image_folder(str(root), SIZE, cache)
    assert 'read from the cache' in caplog.text
  for side in range(2):
    np.testing.assert_array_equal(first[side], second[side])
  assert [p.suffix for p in cache.iterdir()] == ['.npz']  # no temporary file left behind


def test_cache_invalidated_by_change_or_addition(folder, tmp_path, monkeypatch):
  root, relpaths = folder
  cache = tmp_path / 'cache'
  train, test = images.load_image_folder(str(root), SIZE, cache)
  # Another image size is another key.
  assert images.load_image_folder(str(root), 8, cache)[0].shape[1:] == (8, 8, 3)
  # Rewritten in place with the same byte size (an uncompressed BMP): the new modification
  # time alone gives a new key, and the image is decoded again.
  target = root / 'sub' / 'plain.bmp'
  size = target.stat().st_size
  Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(target)
  os.utime(target, ns=(1, 1))
  assert target.stat().st_size == size
  changed = np.concatenate(images.load_image_folder(str(root), SIZE, cache))
  assert not np.array_equal(changed, np.concatenate([train, test]))
  assert (changed == 0).all(axis=(1, 2, 3)).sum() == 1
  # Added: decoded again (opening an image now fails, so a cache hit could not raise).
  Image.fromarray(_noise(9, (20, 20, 3))).save(root / 'added.webp')
  monkeypatch.setattr(images.Image, 'open', _no_open)
  with pytest.raises(AssertionError, match='an image was opened'):
    images.load_image_folder(str(root), SIZE, cache)
  assert len(list(cache.glob('*.npz'))) == 3


def test_corrupt_image_is_named(folder, tmp_path):
  root, _ = folder
  (root / 'sub' / 'broken.jpg').write_bytes(b'this is not a jpeg')
  with pytest.raises(DataError, match=r'broken\.jpg.*delete it') as e:
    images.load_image_folder(str(root), SIZE, tmp_path / 'cache')
  assert str(root / 'sub' / 'broken.jpg') in str(e.value)
  assert not (tmp_path / 'cache').exists() or not list((tmp_path / 'cache').iterdir())


def test_truncated_image_is_named(tmp_path):
  root = tmp_path / 'imgs'
  root.mkdir()
  Image.fromarray(_noise(0, (40, 40, 3))).save(root / 'ok.png')
  Image.fromarray(_noise(1, (64, 64, 3))).save(root / 'cut.jpg')
  data = (root / 'cut.jpg').read_bytes()
  (root / 'cut.jpg').write_bytes(data[: len(data) // 2])
  with pytest.raises(DataError, match=r'cut\.jpg'):
    images.load_image_folder(str(root), 8, tmp_path / 'cache')


def test_empty_glob_and_imageless_folder(tmp_path):
  pattern = str(tmp_path / 'nothing' / '*.png')
  with pytest.raises(DataError, match='names no images') as e:
    images.load_image_folder(pattern, SIZE, tmp_path / 'cache')
  assert pattern in str(e.value)
  (tmp_path / 'texts').mkdir()
  (tmp_path / 'texts' / 'a.txt').write_text('words')
  with pytest.raises(DataError, match=r'texts.*\.png, \.jpg, \.jpeg'):
    images.load_image_folder(str(tmp_path / 'texts'), SIZE, tmp_path / 'cache')
  with pytest.raises(DataError, match='not a file, a folder or a glob'):
    images.load_image_folder(str(tmp_path / 'missing'), SIZE, tmp_path / 'cache')


def test_one_image_is_not_enough(tmp_path):
  Image.fromarray(_noise(0, (20, 20, 3))).save(tmp_path / 'only.png')
  with pytest.raises(DataError, match='at least 2'):
    images.load_image_folder(str(tmp_path / 'only.png'), SIZE, tmp_path / 'cache')


@pytest.mark.parametrize('size', [0, -3, 2.5, True])
def test_bad_image_size(folder, tmp_path, size):
  root, _ = folder
  with pytest.raises(ConfigError, match=r'config\.data\.image_size'):
    images.load_image_folder(str(root), size, tmp_path / 'cache')
