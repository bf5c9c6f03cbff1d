"""Evaluator 'lengths': length generalisation. The trained model on held-out sets of every
length in `cell.eval_lengths` (data.at_length: each set holds that length only), as metrics
'length/<L>/<metric>', and their mean over the lengths beyond training as 'ood/<metric>'
(out of distribution: L > the task's training `length`).

The same parameters serve every length: recurrences, convolutions and sinusoidal positions
take any length; a learned position table (sized at initialisation) cannot, and the cell
then fails with that error.
"""
from __future__ import annotations

import math

import numpy as np

from archbench import data
from archbench.benchmarks.core import Cell, Diverged
from archbench.benchmarks.harness import evaluation
from archbench.benchmarks.harness.evaluators.base import Context, EvaluatorSpec, register


def evaluate_at_lengths(cell: Cell, model, params, parallel) -> dict[str, float]:
  """The 'length/<L>/…' and 'ood/…' metrics of `params` (see the module docstring)."""
  entry = data.get(cell.task)
  metrics, beyond = {}, {}
  for length in cell.eval_lengths:
    task = entry.build(cell.seed, **data.at_length(cell.task_params, length))
    values, _, _ = evaluation.held_out(model, task, params, cell.train, parallel,
                                       cell.fast_compile)
    if not all(math.isfinite(v) for v in values.values()):
      raise Diverged(f'evaluation at length {length} gave non-finite metrics: {values}')
    for key, value in values.items():
      name = key.split('/', 1)[1]
      metrics[f'length/{length}/{name}'] = value
      if length > cell.task_params['length']:
        beyond.setdefault(name, []).append(value)
  metrics.update({f'ood/{name}': float(np.mean(v)) for name, v in beyond.items()})
  return metrics


def _after_training(ctx: Context) -> None:
  ctx.metrics.update(evaluate_at_lengths(ctx.cell, ctx.model, ctx.params, ctx.parallel))


register(EvaluatorSpec(
    name='lengths',
    description='length generalisation: held-out metrics at every length of eval_lengths '
                'and their mean beyond the training length',
    applies=lambda cell, task: bool(cell.eval_lengths),
    after_training=_after_training, metrics=('length/<L>/<metric>', 'ood/<metric>'),
    section='length'))
