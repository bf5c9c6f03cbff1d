"""Evaluator 'sampling': text generation. Continuations of held-out prompts sampled from a
trained language model (generate.sample_and_score), scored by the task's own check
(Task.score_samples), on every cell whose task has one."""
from __future__ import annotations

from archbench.benchmarks.harness import generate
from archbench.benchmarks.harness.evaluators.base import Context, EvaluatorSpec, register
from archbench.data.spec import Stream


def _after_training(ctx: Context) -> None:
  scores, compile_s = generate.sample_and_score(
      ctx.params, ctx.task, ctx.key(Stream.SAMPLE), model=ctx.model,
      num_samples=min(ctx.task.eval_size, ctx.cell.train.eval_batch_size),
      fast=ctx.fast_compile)
  ctx.metrics.update(scores)
  ctx.perf['sample_compile_s'] = compile_s


register(EvaluatorSpec(
    name='sampling',
    description='samples continuations of held-out prompts and scores them with the '
                "task's check (text tasks)",
    applies=lambda cell, task: task.score_samples is not None,
    after_training=_after_training, metrics=('eval/<score>',), perf=('sample_compile_s',)))
