"""Progress of a run, readable at a glance: cells done of total, the cell in flight and its
step, elapsed time and an estimate of the time left.

On a terminal it is a live `rich` display; otherwise (CI, a pipe, a log file) plain log
lines: one when a cell starts and ends, and the step of a long cell every 10 s.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

from absl import logging

from archbench.benchmarks.core import Cell


def _clock(seconds: float) -> str:
  seconds = int(round(seconds))
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}' if seconds >= 3600 \
      else f'{seconds // 60}:{seconds % 60:02d}'


class Progress:
  """The plain reporter (log lines); `for_terminal` picks the live one where it fits.

  The estimate of time left is the mean time per finished cell times the cells left: cells
  differ, so it firms up as the run goes.
  """

  def __init__(self, total: int, log: Callable[[str], None] = logging.info):
    self.total, self.done, self.log = total, 0, log
    self.start = time.perf_counter()
    self._last_step_log = 0.0

  def elapsed(self) -> float:
    return time.perf_counter() - self.start

  def eta(self) -> float | None:
    return self.elapsed() / self.done * (self.total - self.done) if self.done else None

  def timing(self) -> str:
    eta = self.eta()
    left = f', about {_clock(eta)} left' if eta is not None and self.done < self.total else ''
    return f'{_clock(self.elapsed())} elapsed{left}'

  def cell_started(self, index: int, cell: Cell) -> None:
    self.log(f'[{self.done + 1}/{self.total}] {cell.name} ...')
    self._last_step_log = time.perf_counter()

  def step(self, cell: Cell, step: int, steps: int, loss: float) -> None:
    if time.perf_counter() - self._last_step_log > 10:
      self.log(f'  {cell.name}: step {step}/{steps} train/loss {loss:.4g} ({self.timing()})')
      self._last_step_log = time.perf_counter()

  def cell_finished(self, cell: Cell, summary: str) -> None:
    self.done += 1
    self.log(f'[{self.done}/{self.total}] {cell.name}: {summary} ({self.timing()})')

  def close(self) -> None:
    pass

  @staticmethod
  def for_terminal(total: int, stream: Any = None) -> Progress:
    stream = stream or sys.stderr
    return LiveProgress(total) if stream.isatty() else Progress(total)


class LiveProgress(Progress):
  """A live bar (rich): cells done/total, elapsed, time left, and the current cell's step;
  finished cells scroll above it as one line each."""

  def __init__(self, total: int):
    super().__init__(total)
    from rich import markup, progress as rp  # only on a terminal
    self._escape = markup.escape  # a cell's name holds [params], which rich reads as markup
    self._bar = rp.Progress(
        rp.TextColumn('[bold]cells'), rp.BarColumn(), rp.MofNCompleteColumn(),
        rp.TimeElapsedColumn(), rp.TextColumn('left'), rp.TimeRemainingColumn(),
        rp.TextColumn('{task.description}'), transient=False)
    self._task = self._bar.add_task('', total=total)
    self._bar.start()

  def cell_started(self, index: int, cell: Cell) -> None:
    self._bar.update(self._task, description=self._escape(cell.name))

  def step(self, cell: Cell, step: int, steps: int, loss: float) -> None:
    self._bar.update(self._task, description=self._escape(
        f'{cell.name} step {step}/{steps} loss {loss:.4g}'))

  def cell_finished(self, cell: Cell, summary: str) -> None:
    self.done += 1
    self._bar.console.print(f'[{self.done}/{self.total}] {cell.name}: {summary}',
                            markup=False, highlight=False)
    self._bar.update(self._task, advance=1)

  def close(self) -> None:
    self._bar.stop()
