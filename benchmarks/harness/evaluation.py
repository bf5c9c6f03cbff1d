"""What the runner and the evaluators both measure with: the held-out evaluation of a model
(one compiled scan over padded batches) and the memory XLA reports for a compiled function.

Two held-out sets: the validation set (metrics `val/...`), which training may read as often
as it likes (periodic evaluation, stopping at a target, best weights, tuning), and the test
set (`eval/...`), evaluated once, after training.
"""
from __future__ import annotations

import functools

import jax

from archbench.benchmarks.harness import train as train_lib
from archbench.benchmarks.measure import timing


TEST, VALIDATION = 'eval', 'val'  # the metric prefixes of the two held-out sets


class HeldOut:
  """One held-out set on device and its evaluation, compiled at the first call and reused
  (periodic validation evaluates the same set many times)."""

  def __init__(self, model, spec, data, tc, parallel, fast: bool, prefix: str,
               like: HeldOut | None = None):
    self.spec, self.prefix, self.fast = spec, prefix, fast
    self.size = len(data['targets'])
    self.batches, self.weights = parallel.put_batches(train_lib.pad_eval_set(
        data, tc.eval_batch_size, multiple=parallel.num_devices))
    self._evaluate = functools.partial(train_lib.evaluate, model=model, spec=spec)
    self._compiled = None
    self.compile_s = 0.0
    # `like`: the same model's evaluation of another set; where the two sets' padded batches
    # have the same shapes (a generated task's validation and test sets), its compiled
    # function serves this one too, which saves a compilation per cell.
    if like is not None and like._compiled is not None and _shapes(like) == _shapes(self):
      self._compiled = like._compiled

  def __call__(self, params) -> tuple[dict[str, float], float]:
    """(metrics '<prefix>/...', run seconds) of `params`."""
    if self._compiled is None:
      self._compiled, self.compile_s = timing.compile_ahead(
          self._evaluate, params, self.batches, self.weights, fast=self.fast)
    chrono = timing.Chrono(warmup_windows=0)
    sums = chrono.time(self._compiled, params, self.batches, self.weights)
    return train_lib.finalize(self.spec, jax.device_get(sums), self.prefix), chrono.median_s


def _shapes(held_out: HeldOut):
  return jax.tree_util.tree_map(lambda a: (a.shape, a.dtype),
                                (held_out.batches, held_out.weights))


def held_out(model, task, params, tc, parallel, fast: bool, split: str = TEST,
             like: HeldOut | None = None):
  """(metrics '<split>/...', compile seconds, run seconds) of `params` on `task`'s test set
  (split 'eval') or validation set ('val'): one compiled scan over its padded batches
  (`like`'s, where its shapes are these)."""
  data = task.eval_data if split == TEST else task.val_data
  evaluate = HeldOut(model, task.spec, data, tc, parallel, fast, split, like)
  metrics, run_s = evaluate(params)
  return metrics, evaluate.compile_s, run_s


def memory(compiled) -> dict[str, int | None]:
  """Peak, temporary and argument bytes of a compiled function (None where the backend
  does not say)."""
  try:
    m = compiled.memory_analysis()
    peak = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
            - m.alias_size_in_bytes)
    return {'peak_bytes': int(peak), 'temp_bytes': int(m.temp_size_in_bytes),
            'argument_bytes': int(m.argument_size_in_bytes)}
  except Exception:  # some backends do not implement it
    return {'peak_bytes': None, 'temp_bytes': None, 'argument_bytes': None}
