"""Tests for genjax.data.files and genjax.data.mnist: real files, checksums, downloads, IDX."""

import gzip
import io
import pathlib
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest

from genjax.data import files, mnist
from genjax.data.files import DataError

# Class counts of the published files.
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def data_dir() -> pathlib.Path:
  """Where the datasets are: $GENJAX_DATA_DIR, else ~/.cache/genjax (as the library)."""
  return files.resolve_data_dir(None)


def _present(name: str) -> pathlib.Path:
  """The real files of `name`, downloaded first when online (offline and missing: the
  DataError that tests/conftest.py turns into a skip naming the files)."""
  files.fetch_all(data_dir(), name, mnist.dataset_files(name))
  return data_dir() / name


@pytest.fixture
def mnist_present():
  return _present('mnist')


@pytest.fixture
def fashion_present():
  return _present('fashion-mnist')


def _copy_dataset(name: str, dest_root: pathlib.Path) -> pathlib.Path:
  dest = dest_root / name
  shutil.copytree(data_dir() / name, dest)
  for path in dest.iterdir():
    path.chmod(0o644)  # the shared copy is read-only
  return dest


# ---------------------------------------------------------------- real files


def test_mnist_real_files_shapes_and_class_counts(mnist_present, offline):
  images, labels = mnist.load_mnist(data_dir(), 'mnist', 'train')
  assert images.shape == (60000, 28, 28, 1) and images.dtype == np.uint8
  assert labels.shape == (60000,) and labels.dtype == np.int32
  assert np.bincount(labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS
  assert images.max() == 255 and images.min() == 0
  images, labels = mnist.load_mnist(str(data_dir()), 'mnist', 'test')
  assert images.shape == (10000, 28, 28, 1)
  assert np.bincount(labels, minlength=10).tolist() == MNIST_TEST_COUNTS
  assert not offline  # present files are never downloaded


def test_fashion_mnist_real_files(fashion_present, offline):
  images, labels = mnist.load_mnist(data_dir(), 'fashion-mnist', 'test')
  assert images.shape == (10000, 28, 28, 1) and images.dtype == np.uint8
  assert np.bincount(labels, minlength=10).tolist() == [1000] * 10


def test_load_returns_fresh_arrays():
  a, _ = mnist.load_mnist(data_dir(), 'mnist', 'test')
  a[:] = 0  # a caller modifying its copy must not change the next load
  b, _ = mnist.load_mnist(data_dir(), 'mnist', 'test')
  assert b.max() == 255


def test_unknown_name_or_split_lists_allowed_values():
  with pytest.raises(ValueError, match='fashion-mnist'):
    mnist.load_mnist(data_dir(), 'kmnist', 'train')
  with pytest.raises(ValueError, match="'train', 'test'"):
    mnist.load_mnist(data_dir(), 'mnist', 'validation')


# ---------------------------------------------------------------- checksums and downloads


def test_corrupted_file_raises_checksum_error(mnist_present, tmp_path, offline):
  dest = _copy_dataset('mnist', tmp_path)
  path = dest / 't10k-labels-idx1-ubyte.gz'
  raw = bytearray(path.read_bytes())
  raw[100:104] = bytes(b ^ 0xFF for b in raw[100:104])
  path.write_bytes(bytes(raw))
  with pytest.raises(DataError) as err:
    mnist.load_mnist(tmp_path, 'mnist', 'test')
  msg = str(err.value)
  assert 'Checksum mismatch' in msg and str(path) in msg
  assert mnist.dataset_files('mnist')[path.name][0] in msg  # the expected hash
  assert files.sha256_of(path) in msg  # the actual hash
  assert 'Delete it' in msg
  assert not offline  # a corrupt file is reported, not silently re-downloaded


def test_missing_files_offline_lists_every_path_and_url(tmp_path, offline):
  with pytest.raises(DataError) as err:
    mnist.load_mnist(tmp_path, 'mnist', 'train')
  msg = str(err.value)
  for name, (sha256, urls) in mnist.dataset_files('mnist').items():
    assert str(tmp_path / 'mnist' / name) in msg
    for url in urls:
      assert url in msg
      assert url in offline  # every mirror was tried
    assert sha256 in msg
  assert files.ENV_VAR in msg
  assert not (tmp_path / 'mnist').exists()  # offline, nothing is created on disk


def test_only_missing_files_are_reported(mnist_present, tmp_path, offline):
  dest = _copy_dataset('mnist', tmp_path)
  (dest / 'train-labels-idx1-ubyte.gz').unlink()
  with pytest.raises(DataError) as err:
    mnist.load_mnist(tmp_path, 'mnist', 'test')
  msg = str(err.value)
  assert 'train-labels-idx1-ubyte.gz' in msg and '1 file(s) missing' in msg
  assert 't10k-images' not in msg


def _serve(monkeypatch, content_by_url):
  def urlopen(url, timeout=None):
    assert timeout  # downloads must not hang forever
    if url not in content_by_url:
      raise urllib.error.HTTPError(url, 404, 'Not Found', None, None)
    return io.BytesIO(content_by_url[url])

  monkeypatch.setattr(urllib.request, 'urlopen', urlopen)


def test_download_falls_back_to_mirror_and_verifies(mnist_present, tmp_path, monkeypatch):
  real = data_dir() / 'mnist' / 't10k-labels-idx1-ubyte.gz'
  sha256, urls = mnist.dataset_files('mnist')[real.name]
  _serve(monkeypatch, {urls[0]: b'not the file', urls[1]: real.read_bytes()})
  path = files.fetch_verified(tmp_path, f'mnist/{real.name}', sha256, urls)
  assert path == tmp_path / 'mnist' / real.name
  assert path.read_bytes() == real.read_bytes()
  assert sorted(p.name for p in path.parent.iterdir()) == [real.name]  # temp file renamed


def test_download_with_wrong_content_is_not_kept(tmp_path, monkeypatch):
  _serve(monkeypatch, {'https://example.org/f': b'wrong bytes'})
  with pytest.raises(DataError, match='expected'):
    files.fetch_verified(tmp_path, 'ds/f', '0' * 64, ['https://example.org/f'])
  assert not (tmp_path / 'ds' / 'f').exists()
  assert not list((tmp_path / 'ds').iterdir())


def test_resolve_data_dir(monkeypatch):
  monkeypatch.setenv(files.ENV_VAR, '/env/dir')
  assert files.resolve_data_dir('/configured') == pathlib.Path('/configured')
  assert files.resolve_data_dir('') == pathlib.Path('/env/dir')
  assert files.resolve_data_dir(None) == pathlib.Path('/env/dir')
  monkeypatch.delenv(files.ENV_VAR)
  assert files.resolve_data_dir(None) == pathlib.Path.home() / '.cache' / 'genjax'


# ---------------------------------------------------------------- IDX format


def _idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
  return magic.to_bytes(4, 'big') + b''.join(d.to_bytes(4, 'big') for d in dims) + payload


def test_idx_reader_parses_hand_made_file(tmp_path):
  path = tmp_path / 'tiny.gz'
  path.write_bytes(gzip.compress(_idx(mnist.IMAGES_MAGIC, (2, 2, 3), bytes(range(12)))))
  array = mnist.read_idx_gz(path, mnist.IMAGES_MAGIC)
  np.testing.assert_array_equal(array, np.arange(12, dtype=np.uint8).reshape(2, 2, 3))


@pytest.mark.parametrize(
  'raw, match',
  [
    (_idx(2050, (2,), b'\x00\x01'), 'magic number'),
    (_idx(mnist.LABELS_MAGIC, (5,), b'\x00\x01'), 'header says shape'),
    (b'\x00\x00', 'only 2 bytes'),
  ],
)
def test_malformed_idx_raises_data_error(tmp_path, raw, match):
  path = tmp_path / 'bad.gz'
  path.write_bytes(gzip.compress(raw))
  with pytest.raises(DataError, match=match):
    mnist.read_idx_gz(path, mnist.LABELS_MAGIC)


def test_not_gzip_raises_data_error(tmp_path):
  path = tmp_path / 'plain'
  path.write_bytes(_idx(mnist.LABELS_MAGIC, (1,), b'\x03'))
  with pytest.raises(DataError, match='not a readable gzip file'):
    mnist.read_idx_gz(path, mnist.LABELS_MAGIC)
