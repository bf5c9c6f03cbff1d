"""Evaluator 'spectrograms': a few held-out examples of each class of a speech task
(data/speech.py), as log-mel spectrograms, for the report's `spectrograms` section.

The report is drawn from records alone (the results layer imports neither JAX nor data/),
so the pictures must travel in the record: each example is its log-mel quantised to 16
levels, compressed and base64-encoded (data.speech.example_spectrograms), about 2 kB (some
40 kB a cell), under the list-valued metric `examples/logmel` (lists stay out of the
tables and the CSV). The
examples are spread over each class of the test set, which is fixed by the task's
split_seed: every cell of a task records the same ones, and the report draws them once.
"""
from __future__ import annotations

from archbench.benchmarks.harness.evaluators.base import Context, EvaluatorSpec, register
from archbench.data import speech

KEY = 'examples/logmel'
PER_CLASS = 2


def _after_training(ctx: Context) -> None:
  ctx.metrics[KEY] = speech.example_spectrograms(ctx.task, PER_CLASS)


register(EvaluatorSpec(
    name='spectrograms',
    description=f'log-mel spectrograms of {PER_CLASS} held-out examples per class, for the '
                'report (speech tasks)',
    applies=lambda cell, task: cell.task in speech.SPEECH_TASKS,
    after_training=_after_training, metrics=(KEY,), section='spectrograms'))
