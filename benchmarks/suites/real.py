"""Real datasets through TFDS: images, pixel sequences, byte-level text, characters,
speech; and spoken digits synthesised by espeak-ng.

Command: archbench data prepare NAME   (once per dataset, on a machine with internet:
           mnist, fashion_mnist, cifar10, imdb, shakespeare, speech_commands; needs the
           `prepare` extra; spoken_digits needs no network but espeak-ng:
           `apt-get install espeak-ng`, then `archbench data prepare spoken_digits`)
         archbench run --suite real [--data_dir DIR]
Runtime: not measured (it was written where neither an accelerator nor the data was
available). Estimated from its step counts at about 1-1.5 h on one current GPU, most
of it the recurrent cells on 784-1024 steps; on a 2-core CPU, many hours. Reading the
data takes seconds per dataset, once per process. Offline or without the data, every
cell of a missing dataset fails at once (status `error`, one line naming the directory
and the `archbench data prepare` command) and the other cells still run. A cell still
training after an hour is recorded as `timeout` (--config.execution.time_limit_s).
Results: expected from the literature, at larger budgets than size small (100k), so
treat them as ceilings. mnist / fashion_mnist: a small CNN ~99% / ~90%. cifar10: small
CNNs 70-80%. smnist / pmnist (Arjovsky et al. 2016; Bai et al. 2018): LSTM ~98% /
~88-92% when well tuned (Bai et al. report 87% / 86% for theirs), GRU ~96% / ~87%, TCN
99% / 97%. scifar (LRA Image, grayscale): Transformers 42-45%, S4 88%, LRU ~89%. imdb
(LRA Text, bytes; LRA truncates at 4,000, here 1,024): Transformers ~64-65%, S4 ~87%,
LRU ~89%. shakespeare: eval/loss in nats per character (÷ ln 2 for bits) against the
unigram baseline computed from the data; nanoGPT's 10.7M-parameter character model
reaches ~1.47 nats, a 100k model lands well above that. pixels_mnist: not measured; it
binarises by thresholding, not by the literature's stochastic binarisation, so the
PixelCNNs' 78-81 nats per image (0.14-0.15 bits/dim) are no direct reference.
speech_commands (12 classes, log-mel): keyword-spotting models of 20-500k parameters reach
90-96% (Zhang et al. 2017, "Hello Edge"), LSTMs near the low end. spoken_digits (log-mel, 5
unheard test voices, noise at 5-25 dB): after 600 of its 3,000 steps on a CPU, GRU 0.99,
Transformer 0.98, TCN 0.96, LSTM 0.91, LRU 0.83 (docs/tasks.md); the full run was not
measured.
"""
from archbench.benchmarks.config import suite_config, task_plan

_IMAGE = dict(steps=3000, batch_size=128, lr=3e-3, warmup_steps=100, steps_per_dispatch=100,
              eval_batch_size=1000)
_PIXEL = dict(steps=5000, batch_size=128, lr=1e-3, warmup_steps=200, steps_per_dispatch=100,
              eval_batch_size=1000)
_SEQUENCE_ARCHS = ('lstm', 'gru', 'transformer', 'tcn', 'lru')
# Speech as 100 log-mel frames of 40 bands; features computed on device per batch.
_SPEECH = dict(steps=3000, batch_size=64, lr=1e-3, warmup_steps=100, steps_per_dispatch=100,
               eval_batch_size=500)


def get_config():
  return suite_config(
      name='real', doc=__doc__, size='small',
      execution={'time_limit_s': 3600.0},  # see lrd: a guard, not a budget
      tasks={
          'mnist': task_plan({}, _IMAGE, archs=('cnn', 'vit')),
          'fashion_mnist': task_plan({}, _IMAGE, archs=('cnn', 'vit')),
          'cifar10': task_plan({}, {**_IMAGE, 'steps': 5000}, archs=('cnn', 'vit')),
          'smnist': task_plan({}, _PIXEL, archs=_SEQUENCE_ARCHS),
          'pmnist': task_plan({}, _PIXEL, archs=_SEQUENCE_ARCHS),
          'scifar': task_plan({}, {**_PIXEL, 'batch_size': 64},
                              archs=('lstm', 'transformer', 'tcn', 'lru')),
          'imdb': task_plan({'length': 1024}, dict(
              steps=3000, batch_size=32, lr=1e-3, warmup_steps=200, steps_per_dispatch=100,
              eval_batch_size=500), archs=('lstm', 'transformer', 'tcn', 'lru')),
          'shakespeare': task_plan({'length': 256}, dict(
              steps=5000, batch_size=64, lr=1e-3, warmup_steps=200, steps_per_dispatch=100,
              eval_batch_size=100),
              archs=('lstm', 'gru', 'transformer', 'decoder', 'tcn', 'lru')),
          'pixels_mnist': task_plan({'levels': 2}, {**_PIXEL, 'batch_size': 64},
                                    archs=('lstm', 'decoder', 'tcn')),
          'spoken_digits': task_plan({}, _SPEECH, archs=_SEQUENCE_ARCHS),
          'speech_commands': task_plan({}, {**_SPEECH, 'steps': 6000}, archs=_SEQUENCE_ARCHS),
      })
