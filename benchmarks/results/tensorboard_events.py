"""TensorBoard event files of a run's training curves, for runs that set `log.tensorboard`
(`--config.log.tensorboard=True`, or its older spelling `--config.tensorboard=True`):
OUT/tensorboard/<cell>/, one run per cell, written by the driver from each cell's record as
the cell finishes (the TensorBoard tracker, trackers.py); `tensorboard --logdir
OUT/tensorboard` shows them.

Written with tensorboardX, which needs no TensorFlow (flax's and clu's writers use
tf.summary); it is the `tensorboard` extra: `pip install 'archbench[tensorboard]'`.
"""
from __future__ import annotations

import math
import pathlib
import re
import shutil

from archbench.benchmarks.core import UsageError

DIRECTORY = 'tensorboard'


def require() -> None:
  """Refuses a run that asks for event files without tensorboardX, before it starts."""
  try:
    import tensorboardX  # noqa: F401
  except ImportError:
    raise UsageError("config.log.tensorboard needs tensorboardX: pip install "
                     "'archbench[tensorboard]'") from None


def cell_name(record) -> str:
  """arch-task-size-s<seed>-<cell_id[:8]>, with any character a path cannot hold as _."""
  name = (f'{record["arch"]}-{record["task"]}-{record["size"]}-s{record["seed"]}-'
          f'{str(record.get("cell_id"))[:8]}')
  return re.sub(r'[^A-Za-z0-9._=-]+', '_', name)


def write_cell(out_dir: pathlib.Path, record) -> pathlib.Path:
  """The cell's training loss at each step of its curve, and its held-out (eval/)
  metrics at its last step. A cell recorded again (a resumed run re-runs a torn one)
  replaces its files."""
  from tensorboardX import SummaryWriter
  path = out_dir / DIRECTORY / cell_name(record)
  shutil.rmtree(path, ignore_errors=True)
  writer = SummaryWriter(logdir=str(path))
  try:
    for key, curve in (record.get('curves') or {}).items():
      for step, value in curve:
        if value is not None:  # a diverged cell's last loss (NaN) is JSON null
          writer.add_scalar(key, value, step)
    last = (record.get('metrics') or {}).get('train/steps')
    for key, value in (record.get('metrics') or {}).items():
      if (key.startswith('eval/') and isinstance(value, (int, float))
          and not isinstance(value, bool) and math.isfinite(value)):
        writer.add_scalar(key, value, last)
  finally:
    writer.close()
  return path


class TensorBoard:
  """The tracker (trackers.py) that writes these files: one directory per cell, nothing
  at the end of the run, nothing to release."""
  name = 'TensorBoard'

  def __init__(self):
    self.out_dir: pathlib.Path | None = None

  def start(self, out_dir: pathlib.Path, run_info) -> None:
    self.out_dir = out_dir

  def write_cell(self, record) -> None:
    write_cell(self.out_dir, record)

  def finish(self, out_dir: pathlib.Path) -> None:
    pass

  def close(self) -> None:
    pass
