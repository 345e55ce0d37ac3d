"""Dataset files on disk: where they live, checksum verification, and downloads.

Every standard dataset is a handful of published files. They are looked up under
`<data dir>/<dataset>/`, verified by SHA-256 (a truncated or swapped file fails here,
not as a mysterious shape error later), and downloaded when missing. When the
downloads fail too (an offline cluster node), one error lists every missing file of
the dataset with the path it must be placed at and the URL it comes from, so the
user can fix everything in one go.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import logging
import os
import pathlib
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence

ENV_VAR = 'GENJAX_DATA_DIR'
DEFAULT_DATA_DIR = '~/.cache/genjax'
_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 30.0

# name -> (sha256, urls to try in order)
FileSpec = tuple[str, Sequence[str]]

_log = logging.getLogger(__name__)


class DataError(Exception):
  """A data problem the user can fix (missing, corrupt or malformed file).

  The message always says what to do about it.
  """


def resolve_data_dir(configured: str | os.PathLike | None) -> pathlib.Path:
  """The data root: `configured` if non-empty, else `$GENJAX_DATA_DIR`, else ~/.cache/genjax."""
  if configured:
    return pathlib.Path(configured).expanduser()
  env = os.environ.get(ENV_VAR)
  if env:
    return pathlib.Path(env).expanduser()
  return pathlib.Path(DEFAULT_DATA_DIR).expanduser()


def sha256_of(path: str | os.PathLike) -> str:
  """Hex SHA-256 of a file, read in 1 MiB chunks (datasets can be large)."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    while chunk := f.read(_CHUNK_BYTES):
      digest.update(chunk)
  return digest.hexdigest()


@functools.lru_cache(maxsize=256)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
  # Keyed on mtime and size so that a file replaced on disk is hashed again, while
  # repeated loads in one process (train, then test, then eval) hash only once.
  del mtime_ns, size
  return sha256_of(path)


def _current_sha256(path: pathlib.Path) -> str:
  stat = path.stat()
  return _sha256_cached(str(path), stat.st_mtime_ns, stat.st_size)


def _check_existing(path: pathlib.Path, sha256: str, urls: Sequence[str]) -> None:
  actual = _current_sha256(path)
  if actual != sha256.lower():
    source = f' (from {urls[0]})' if urls else ''
    raise DataError(
      f'Checksum mismatch for {path}:\n'
      f'  expected sha256 {sha256.lower()}\n'
      f'  actual   sha256 {actual}\n'
      f'The file is corrupt, truncated or a different version. Delete it so that it is '
      f'downloaded again{source}, or replace it with the published file.'
    )


class _DownloadFailed(Exception):
  """One URL did not yield the expected file."""


def _download(url: str, dest: pathlib.Path, sha256: str) -> None:
  """Downloads `url` to `dest` atomically: temp file in the same dir, verify, rename."""
  # Connect first: offline, nothing is created on disk (not even the dataset directory).
  with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{dest.name}.', suffix='.part', dir=dest.parent)
    try:
      digest = hashlib.sha256()
      with os.fdopen(fd, 'wb') as out:
        while chunk := resp.read(_CHUNK_BYTES):
          digest.update(chunk)
          out.write(chunk)
      if digest.hexdigest() != sha256.lower():
        raise _DownloadFailed(
          f'downloaded file has sha256 {digest.hexdigest()}, expected {sha256.lower()}'
        )
      # Same directory, so the rename is atomic: readers never see a partial file.
      os.replace(tmp_name, dest)
    except BaseException:
      with contextlib.suppress(OSError):
        os.unlink(tmp_name)
      raise


def _try_urls(dest: pathlib.Path, sha256: str, urls: Sequence[str]) -> dict[str, str]:
  """Tries each URL in turn; returns url -> why it failed ({} on success)."""
  reasons = {}
  for url in urls:
    _log.info('Downloading %s -> %s', url, dest)
    try:
      _download(url, dest, sha256)
      return {}
    except (OSError, ValueError, http.client.HTTPException, _DownloadFailed) as e:
      # OSError covers URLError, HTTPError, timeouts and an unwritable data dir.
      reasons[url] = str(e)
  if not urls:
    reasons['(no URL)'] = 'no download URL is known for this file'
  return reasons


def _missing_message(
  dataset_dir: str, base: pathlib.Path, failed: Mapping[str, tuple[str, dict[str, str]]]
) -> str:
  lines = [
    f'Dataset {dataset_dir!r}: {len(failed)} file(s) missing under {base} and the '
    f'download failed (offline?).',
    'Download each file below and save it at the path shown, or point config.data.dir '
    f'(or ${ENV_VAR}) at a directory that already holds {dataset_dir}/:',
  ]
  for name, (sha256, reasons) in failed.items():
    lines.append(f'  {base / name}')
    for url, reason in reasons.items():
      lines.append(f'      from {url}  (failed: {reason})')
    lines.append(f'      sha256 {sha256.lower()}')
  return '\n'.join(lines)


def fetch_all(
  root: str | os.PathLike, dataset_dir: str, files: Mapping[str, FileSpec]
) -> dict[str, pathlib.Path]:
  """Makes every file of a dataset present and verified under `root/dataset_dir/`.

  Args:
    root: the data root (see `resolve_data_dir`).
    dataset_dir: the dataset's directory under the root, e.g. 'mnist'.
    files: file name -> (sha256, URLs to try in order).

  Returns:
    file name -> verified path.

  Raises:
    DataError: a present file has the wrong checksum (names it, with both hashes), or
      some files are missing and cannot be downloaded (one error listing all of them,
      with the path each must be placed at and the URLs to get it from).
  """
  base = pathlib.Path(root).expanduser() / dataset_dir
  paths = {name: base / name for name in files}
  # Check what is present first: a corrupt file is reported before any download starts.
  missing = []
  for name, (sha256, urls) in files.items():
    if paths[name].exists():
      _check_existing(paths[name], sha256, urls)
    else:
      missing.append(name)
  failed = {}
  for name in missing:
    sha256, urls = files[name]
    reasons = _try_urls(paths[name], sha256, urls)
    if reasons:
      failed[name] = (sha256, reasons)
  if failed:
    raise DataError(_missing_message(dataset_dir, base, failed))
  return paths


def fetch_verified(
  root: str | os.PathLike, relpath: str, sha256: str, urls: Sequence[str]
) -> pathlib.Path:
  """One file: `root/relpath`, verified, downloaded from `urls` if missing.

  Raises DataError as `fetch_all` does; prefer `fetch_all` for a multi-file dataset so
  that all missing files are reported together.
  """
  rel = pathlib.PurePosixPath(relpath)
  return fetch_all(root, str(rel.parent), {rel.name: (sha256, urls)})[rel.name]
