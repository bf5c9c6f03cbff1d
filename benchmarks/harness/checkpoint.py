"""Checkpoints of a cell in flight (orbax), so that a killed run resumes a long cell where
it stopped instead of from step 0.

A checkpoint is taken at a dispatch boundary and holds the training state (parameters,
optimiser state, step) and the index of the next dispatch. Nothing else is needed: every
training batch is drawn from a key folded from the seed and the dispatch index, so the
resumed cell sees exactly the batches the uninterrupted one would have, and ends with the
same parameters and metrics. orbax writes to a temporary directory and renames it, so a
kill mid-save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import pathlib
import time
from typing import Any

import jax
import orbax.checkpoint as ocp


class CellCheckpoints:
  """Save every `every_steps` optimiser steps or `every_s` seconds, whichever comes first
  (None: that trigger is off); `restore` returns the latest (state, next dispatch)."""

  def __init__(self, directory: pathlib.Path, *, every_steps: int | None = None,
               every_s: float | None = None):
    self.directory = directory
    self.every_steps, self.every_s = every_steps, every_s
    self._manager = None
    self._last_save_step, self._last_save_time = 0, time.monotonic()

  @property
  def manager(self) -> ocp.CheckpointManager:
    if self._manager is None:
      self._manager = ocp.CheckpointManager(
          self.directory.resolve(), options=ocp.CheckpointManagerOptions(
              max_to_keep=1, enable_async_checkpointing=False))
    return self._manager

  def restore(self, state_like: Any) -> tuple[Any, int] | None:
    """(state, next dispatch index) of the latest checkpoint, or None if there is none."""
    if not self.directory.is_dir():
      return None
    step = self.manager.latest_step()
    if step is None:
      return None
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state_like)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    self._last_save_step, self._last_save_time = step, time.monotonic()
    return restored.state, int(restored.meta['next_dispatch'])

  def due(self, step: int) -> bool:
    by_steps = self.every_steps is not None and step - self._last_save_step >= self.every_steps
    by_time = (self.every_s is not None
               and time.monotonic() - self._last_save_time >= self.every_s)
    return by_steps or by_time

  def save(self, state: Any, step: int, next_dispatch: int) -> None:
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        meta=ocp.args.JsonSave({'next_dispatch': next_dispatch, 'step': step})))
    self.manager.wait_until_finished()
    self._last_save_step, self._last_save_time = step, time.monotonic()

