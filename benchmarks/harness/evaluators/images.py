"""Evaluator 'images': image generation. Images sampled from a trained pixel model
(generate.sample_images: through the backbone's decode path where it has one), scored by
the task's own check (Task.image_samples.score), and a few of them kept in the record for
the report's picture (section `images`, benchmarks/results/image_samples.py), on every
cell whose task generates images.

Bits per dimension says how well a model predicts the next pixel; the samples show whether
what it draws looks like the data, which a low average loss does not promise.
"""
from __future__ import annotations

from archbench.benchmarks.harness import generate
from archbench.benchmarks.harness.evaluators.base import Context, EvaluatorSpec, register
from archbench.data.spec import Stream

# Images drawn and scored per cell (at most; the held-out set and the evaluation batch may
# be smaller): enough for a score to within a few points.
MAX_SAMPLES = 256
# Images kept in the record (samples/images) for the report's grid: a 4 x 4 grid per
# architecture; a few kilobytes per record for 8 x 8 digits, ~30 kB for MNIST's 28 x 28.
SHOWN = 16


def _after_training(ctx: Context) -> None:
  images = ctx.task.image_samples
  num_samples = min(ctx.task.eval_size, ctx.cell.train.eval_batch_size, MAX_SAMPLES)
  pixels, compile_s = generate.sample_images(
      ctx.params, ctx.task, ctx.key(Stream.SAMPLE), model=ctx.model,
      num_samples=num_samples, fast=ctx.fast_compile)  # [N, H * W]
  ctx.metrics.update({f'eval/{k}': v for k, v in images.score(pixels).items()})
  height, width = images.shape
  ctx.metrics['samples/images'] = pixels[:SHOWN].reshape(-1, height, width).tolist()
  ctx.metrics['samples/levels'] = images.levels
  ctx.perf['sample_compile_s'] = compile_s


register(EvaluatorSpec(
    name='images',
    description='samples images from a trained pixel model, scores them with the task\'s '
                'check and keeps a few for the report (image generation)',
    applies=lambda cell, task: task.image_samples is not None,
    after_training=_after_training,
    metrics=('eval/<score>', 'samples/images', 'samples/levels'),
    perf=('sample_compile_s',), section='images'))
