"""What the runner and the evaluators both measure with: the held-out evaluation of a model
(one compiled scan over padded batches) and the memory XLA reports for a compiled function.
"""
from __future__ import annotations

import functools

import jax

from archbench.benchmarks.harness import train as train_lib
from archbench.benchmarks.measure import timing


def held_out(model, task, params, tc, parallel, fast: bool):
  """(metrics 'eval/...', compile seconds, run seconds) of `params` on `task`'s held-out
  set: one compiled scan over its padded batches."""
  batches, weights = parallel.put_batches(train_lib.pad_eval_set(
      task.eval_data, tc.eval_batch_size, multiple=parallel.num_devices))
  evaluate = functools.partial(train_lib.evaluate, model=model, spec=task.spec)
  compiled, compile_s = timing.compile_ahead(evaluate, params, batches, weights, fast=fast)
  chrono = timing.Chrono(warmup_windows=0)
  sums = chrono.time(compiled, params, batches, weights)
  return train_lib.finalize(task.spec, jax.device_get(sums), 'eval'), compile_s, chrono.median_s


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
