"""Evaluator 'cost': a point of a cost-versus-length sweep (a suite plan's sweep with probe
'cost') times forward-only inference, and skips the held-out evaluation, whose metrics mean
nothing after a cost cell's few steps and whose compilation would add as much again to the
cell's time for slow-compiling models (the LRU's: 10-20 s on a 2-core CPU). The scaling fit
(results/scaling.py) reads its perf infer_*.
"""
from __future__ import annotations

import functools
from typing import Any

import jax

from archbench.benchmarks.harness import evaluation
from archbench.benchmarks.harness import train as train_lib
from archbench.benchmarks.harness.evaluators.base import Context, EvaluatorSpec, register
from archbench.benchmarks.measure import timing

# A warm-up call, then at least FORWARD_MIN_WINDOWS timed calls, more (up to
# FORWARD_MAX_WINDOWS) while they add up to under FORWARD_MIN_S, so that millisecond
# forwards are not timed from a handful of noisy calls.
FORWARD_MIN_WINDOWS, FORWARD_MAX_WINDOWS, FORWARD_MIN_S = 3, 20, 0.5


def time_forward(model, task, params, key: jax.Array, batch_size: int, parallel,
                 fast: bool = False) -> dict[str, Any]:
  """Forward-only inference on one batch of the training batch size, compiled ahead and
  timed by the one timer: what serving the model costs, apart from the training step (the
  evaluation's timing mixes in the loss over the held-out set at another batch size)."""
  spec = task.spec
  batch = jax.jit(task.train_batch, static_argnums=1,
                  out_shardings=parallel.batch_sharding())(key, batch_size)
  inputs = train_lib.model_args(spec, batch)
  forward = functools.partial(model.apply, train=False)
  compiled, compile_s = timing.compile_ahead(forward, params, *inputs, fast=fast)
  chrono = timing.Chrono(warmup_windows=1)
  chrono.time(compiled, params, *inputs)
  while (len(chrono.windows) <= FORWARD_MIN_WINDOWS or
         (len(chrono.windows) <= FORWARD_MAX_WINDOWS and
          sum(s for s, _ in chrono.windows[1:]) < FORWARD_MIN_S)):
    chrono.time(compiled, params, *inputs)
  forward_s = chrono.median_s
  return {'infer_ms': 1e3 * forward_s, 'infer_ms_min': 1e3 * chrono.spread_s[0],
          'infer_ms_max': 1e3 * chrono.spread_s[1], 'infer_windows': chrono.timed_windows,
          'infer_tokens_per_s': batch_size * spec.tokens_per_example / forward_s,
          'infer_compile_s': compile_s,
          'infer_peak_bytes': evaluation.memory(compiled)['peak_bytes']}


def _after_training(ctx: Context) -> None:
  """Timed on the batch a dispatch after the last would draw."""
  ctx.perf.update(time_forward(ctx.model, ctx.task, ctx.params,
                               jax.random.fold_in(ctx.train_key, ctx.num_dispatches),
                               ctx.cell.train.batch_size, ctx.parallel,
                               fast=ctx.fast_compile))


register(EvaluatorSpec(
    name='cost',
    description='forward-only inference time of a point of a cost-versus-length sweep',
    applies=lambda cell, task: 'cost' in cell.probes,
    after_training=_after_training, replaces_evaluation=True,
    perf=('infer_ms', 'infer_ms_min', 'infer_ms_max', 'infer_windows', 'infer_tokens_per_s',
          'infer_compile_s', 'infer_peak_bytes'),
    section='scaling'))
