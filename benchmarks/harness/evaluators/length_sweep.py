"""Evaluator 'length_sweep': marks a cell as a point of an accuracy-versus-length sweep (a
suite plan's `sweep` with probe 'length'), so the long-range tables (results/long_range.py)
find it by its lrd/length."""
from __future__ import annotations

from archbench.benchmarks.harness.evaluators.base import Context, EvaluatorSpec, register


def _before_training(ctx: Context) -> None:
  ctx.metrics['lrd/length'] = ctx.task.spec.length


register(EvaluatorSpec(
    name='length_sweep',
    description='marks a point of an accuracy-versus-length sweep with its length',
    applies=lambda cell, task: 'length' in cell.probes,
    before_training=_before_training, metrics=('lrd/length',), section='lrd'))
