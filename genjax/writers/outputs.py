"""What a family's view draws, typed, each kind with its one writer.

A view returns one of these; the loop (samples during training) and `launch.sample`
(on demand) call `save` and `log` without knowing which kind they hold, so a family that
draws something new adds a kind and nothing in the loop changes: music's (MIDI, audio and a
piano roll per piece) is `genjax.writers.music.Music`, beside the writers it needs.

  save(stem) -> path     writes `stem` + the kind's suffix (atomically) and returns it
  log(writer, step, tag) sends it to TensorBoard through a `MetricWriter`
  show() -> str          what `launch.sample` prints: a path, or the text itself
  saved_by_default       whether `launch.sample` writes a file without --out
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

from genjax.writers import images as image_writer


@dataclasses.dataclass
class Pictures:
  """Pictures laid out in rows: [rows, cols, H, W, C] floats in [0, 1]."""

  pictures: np.ndarray
  path: str = ''  # where `save` last wrote it
  saved_by_default = True

  @property
  def grid(self) -> np.ndarray:
    """One uint8 image with the pictures in their rows and columns."""
    p = np.asarray(self.pictures)
    rows, cols = p.shape[:2]
    return image_writer.make_grid(p.reshape(rows * cols, *p.shape[2:]), ncol=cols)

  def save(self, stem: str | os.PathLike) -> str:
    self.path = str(image_writer.save_png(f'{stem}.png', self.grid))
    return self.path

  def log(self, writer, step: int, tag: str) -> None:
    writer.write_images(step, tag, self.grid)

  def show(self) -> str:
    return self.path


@dataclasses.dataclass
class Text:
  """Generated text; `streamed` when it was already printed as it was generated."""

  text: str
  streamed: bool = False
  saved_by_default = False

  def save(self, stem: str | os.PathLike) -> str:
    path = pathlib.Path(f'{stem}.txt')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
    tmp.write_text(self.text, encoding='utf-8')
    os.replace(tmp, path)
    return str(path)

  def log(self, writer, step: int, tag: str) -> None:
    writer.write_text(step, tag, self.text)

  def show(self) -> str:
    return '' if self.streamed else self.text
