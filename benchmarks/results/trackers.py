"""Experiment trackers: where a run's cells go besides results.jsonl, for runs that set
`log.*` (`--config.log.tensorboard=True`, `--config.log.wandb=True`): TensorBoard event
files (tensorboard_events.py) and Weights & Biases runs (wandb_runs.py).

A tracker is fed by the driver (harness/suite.py) from each finished cell's record, after
the record is in results.jsonl: so it works the same with every executor (wherever a cell
ran, its record comes back to the driver) and never runs in a worker, and results.jsonl
stays the one source of truth. A tracker that fails is reported in one warning line and
dropped for the rest of the run; the records and the other trackers go on.

The interface, four methods, which run_suite calls in this order:

  start(out_dir, run_info)  once, before the first cell finishes; run_info holds the
                            suite run's identity (run_id, suite, cells, resume, ...)
  write_cell(record)        once per finished cell, with its record as written
  finish(out_dir)           once, when the run completed: the run's own files (results,
                            summaries, report) are final
  close()                   always, last, even when the run stopped early: release what
                            start took (W&B's service process)
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Callable, Protocol

from absl import logging

from archbench.benchmarks.core import UsageError, one_line
from archbench.benchmarks.results import tensorboard_events, wandb_runs


class Tracker(Protocol):
  """What run_suite feeds (the module docstring says when); `name` is what a warning says."""
  name: str

  def start(self, out_dir: pathlib.Path, run_info: dict[str, Any]) -> None: ...

  def write_cell(self, record: dict[str, Any]) -> None: ...

  def finish(self, out_dir: pathlib.Path) -> None: ...

  def close(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class Settings:
  """config.log as a run's plan keeps it (run.json's dispatch['log']), so that --resume
  writes to the same trackers. wandb_mode is resolved (wandb_runs.resolve_mode): what the
  run began with, not what the resuming shell's WANDB_MODE says."""
  tensorboard: bool = False
  wandb: bool = False
  wandb_project: str = wandb_runs.DEFAULT_PROJECT
  wandb_entity: str | None = None
  wandb_mode: str = 'offline'
  wandb_dir: str | None = None  # None: the run's directory

  def __post_init__(self):
    for name in ('tensorboard', 'wandb'):
      if not isinstance(getattr(self, name), bool):
        raise UsageError(f'config.log.{name} takes True or False, not '
                         f'{getattr(self, name)!r}')
    wandb_runs.check_name('config.log.wandb_project', self.wandb_project)
    if self.wandb_entity is not None:
      wandb_runs.check_name('config.log.wandb_entity', self.wandb_entity)
    if self.wandb_mode not in wandb_runs.RESOLVED_MODES:
      raise UsageError(f'config.log.wandb_mode {self.wandb_mode!r}; valid: '
                       f'{", ".join(wandb_runs.MODES)}')

  @classmethod
  def of(cls, log: dict[str, Any] | None, tensorboard: bool = False) -> Settings:
    """From a plan's dispatch: `log` (its `log` entry) and `tensorboard`, the flag that
    plans made before `log` existed carry (an alias of log.tensorboard)."""
    log = dict(log or {})
    unknown = set(log) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise UsageError(f'unknown tracker setting(s) {", ".join(sorted(unknown))}; valid: '
                       f'{", ".join(f.name for f in dataclasses.fields(cls))}')
    if tensorboard:
      log['tensorboard'] = True
    return cls(**log)

  def any(self) -> bool:
    return self.tensorboard or self.wandb

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def require(settings: Settings) -> None:
  """Refuses a run whose trackers cannot work here (an extra not installed, W&B online
  without credentials), before any cell runs."""
  if settings.tensorboard:
    tensorboard_events.require()
  if settings.wandb:
    wandb_runs.require(settings.wandb_mode)


def chosen(settings: Settings) -> list[Tracker]:
  """The trackers `settings` asks for, not started."""
  out: list[Tracker] = []
  if settings.tensorboard:
    out.append(tensorboard_events.TensorBoard())
  if settings.wandb:
    out.append(wandb_runs.WandB(project=settings.wandb_project, entity=settings.wandb_entity,
                                mode=settings.wandb_mode, directory=settings.wandb_dir))
  return out


class Trackers:
  """Several trackers behind the interface of one. A tracker's error is one warning line
  (`warn`), and that tracker is closed and skipped from then on: a tracker never stops a
  run, and a tracker that cannot reach its server is not retried at every cell."""

  def __init__(self, trackers: list[Tracker],
               warn: Callable[[str], None] = lambda text: logging.warning('%s', text)):
    self.active = list(trackers)
    self._warn = warn

  @classmethod
  def open(cls, settings: Settings, out_dir: pathlib.Path, run_info: dict[str, Any],
           **kwargs) -> Trackers:
    """The trackers of `settings`, started."""
    trackers = cls(chosen(settings), **kwargs)
    trackers._each('start', out_dir, run_info)
    return trackers

  def write_cell(self, record: dict[str, Any]) -> None:
    self._each('write_cell', record)

  def finish(self, out_dir: pathlib.Path) -> None:
    self._each('finish', out_dir)

  def close(self) -> None:
    for tracker in self.active:
      self._close(tracker)
    self.active = []

  def _each(self, method: str, *args) -> None:
    for tracker in list(self.active):
      try:
        getattr(tracker, method)(*args)
      except Exception as error:  # whatever a tracker raises, the run goes on
        self.active.remove(tracker)
        self._warn(f'{tracker.name} tracker failed ({method}: {one_line(error)}); it writes '
                   'nothing more in this run; results.jsonl is unaffected')
        self._close(tracker)

  def _close(self, tracker: Tracker) -> None:
    try:
      tracker.close()
    except Exception as error:
      self._warn(f'{tracker.name} tracker failed (close: {one_line(error)})')
