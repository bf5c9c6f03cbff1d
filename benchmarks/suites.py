"""Suites are data: a named plan of cells (arch x task x size x seed, with overrides).

By default a suite runs every registered architecture on every task it can serve, so a
new architecture joins every suite by registration alone. Sweeps (lengths, seeds) are
loops here, never new files.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import archs
import data
from benchmarks import model as model_lib
from benchmarks.runner import Cell
from benchmarks.train import TrainConfig


@dataclasses.dataclass(frozen=True)
class TaskPlan:
  """How a suite runs one task: generator parameters, optimisation, and per-architecture
  adjustments (e.g. a lower learning rate for attention)."""
  params: dict[str, Any] = dataclasses.field(default_factory=dict)
  train: TrainConfig = TrainConfig()
  per_arch_train: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
  archs: tuple[str, ...] | None = None  # None: every architecture that can serve the task
  # Accuracy versus length (benchmarks/lrd.py): one cell per value of the parameter
  # sweep[0] in sweep[1], e.g. ('length', (16, 32, 64)), each recording lrd/length; the
  # gradient probe runs on the cells whose value is in `gradient_probe_at`.
  sweep: tuple[str, tuple[Any, ...]] | None = None
  gradient_probe_at: tuple[Any, ...] = ()
  # Backbone config overrides per architecture (e.g. a TCN deep enough to see the whole
  # sequence); they change the parameter count, which every record carries.
  arch_overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

  def points(self) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """(task parameters, probes) of each cell the plan makes per architecture and seed."""
    if self.sweep is None:
      return [(dict(self.params), ())]
    name, values = self.sweep
    return [({**self.params, name: v},
             ('length', 'gradient') if v in self.gradient_probe_at else ('length',))
            for v in values]


@dataclasses.dataclass(frozen=True)
class Suite:
  name: str
  doc: str  # command, expected runtime, expected results
  size: str
  tasks: dict[str, TaskPlan]
  archs: tuple[str, ...] | None = None  # None: every registered architecture
  seeds: tuple[int, ...] = (0,)
  fast_compile: bool = False  # see runner.Cell.fast_compile
  # Run every backbone at this depth (whichever of DEPTH_FIELDS its config has) instead of
  # its default: compile time grows with depth, and a suite that only checks that every
  # pair runs need not pay for it. None keeps the default depth.
  depth: int | None = None
  workers: int = 1  # cells run at once; see runner.run_suite (timing suites keep 1)

  @property
  def summary(self) -> str:
    return self.doc.strip().splitlines()[0]

  def cells(self, archs_filter=None, tasks_filter=None, size=None, seeds=None) -> list[Cell]:
    """The suite's cells, narrowed by the CLI's filters. Explicitly requested pairs that
    cannot run raise UsageError; unrequested incompatible pairs are skipped."""
    default_archs = list(self.archs or archs.names())
    task_names = list(tasks_filter or self.tasks)
    size = size or self.size
    with model_lib.usage_errors():
      for name in archs_filter or []:
        archs.get(name)
      for name in task_names:
        data.get(name)
      archs.registry.budget(size)
    cells = []
    for task_name in task_names:
      plan = self.tasks.get(task_name, TaskPlan())
      spec = data.spec_of(task_name, **plan.params)  # dataset tasks read no data here
      arch_names = list(archs_filter or plan.archs or default_archs)
      for arch_name in arch_names:
        reason = model_lib.incompatibility(archs.get(arch_name), spec)
        if reason:
          if archs_filter and tasks_filter:
            raise model_lib.UsageError(f'cannot run {arch_name} on {task_name}: {reason}')
          continue
        train = dataclasses.replace(plan.train, **plan.per_arch_train.get(arch_name, {}))
        for params, probes in plan.points():
          for seed in seeds if seeds is not None else self.seeds:
            overrides = {**plan.arch_overrides.get(arch_name, {}),
                         **depth_overrides(arch_name, self.depth)}
            cells.append(Cell(arch_name, task_name, size, seed, params, overrides, train,
                              self.fast_compile, probes))
    if not cells:
      raise model_lib.UsageError(
          f'no architecture in {",".join(archs_filter or default_archs)} can run any task '
          f'in {",".join(task_names)} in suite {self.name}')
    return cells


DEPTH_FIELDS = ('num_layers', 'num_blocks', 'stages', 'encoder_layers', 'decoder_layers')


def depth_overrides(arch_name: str, depth: int | None) -> dict[str, int]:
  if depth is None:
    return {}
  fields = {f.name for f in dataclasses.fields(archs.get(arch_name).config_for_width(8))}
  return {name: depth for name in DEPTH_FIELDS if name in fields}


_SUITES: dict[str, Suite] = {}


def register(suite: Suite) -> Suite:
  _SUITES[suite.name] = suite
  return suite


def get(name: str) -> Suite:
  if name not in _SUITES:
    raise model_lib.UsageError(f'unknown suite {name!r}; valid: {", ".join(_SUITES)}')
  return _SUITES[name]


def names() -> list[str]:
  return list(_SUITES)


_SMOKE_TRAIN = TrainConfig(steps=10, batch_size=8, lr=1e-3, warmup_steps=2,
                           steps_per_dispatch=5, eval_batch_size=64)

register(Suite(
    name='smoke',
    doc="""Does everything run? Every architecture x task kind, and every offline task, briefly.

    Command: archbench run --suite smoke
    Runtime: about 1.5 minutes on a 2-core CPU. It is nearly all compilation, so it is made
    cheap: every backbone at depth 1 (the default depths are covered by the unit tests at
    tiny and by `quick` at small), compiled without backend optimisation, two cells at
    once (XLA compiles on one thread). Its step times are therefore not representative.
    Every architecture runs on the first four tasks, which cover every task kind (per-token,
    causal per-token via translate's prefix LM, regression, classification, seq2seq); the
    other offline tasks each run with three architectures of different families, so each
    generator, spec and metric goes through the harness without paying for every pair.
    Results: meaningless accuracies (10 steps); every status `ok`. The tests run it.
    """,
    size='tiny',
    fast_compile=True,
    workers=2,
    depth=1,
    tasks={
        'adding': TaskPlan({'length': 16, 'eval_size': 64}, _SMOKE_TRAIN),
        'copy': TaskPlan({'length': 8, 'eval_size': 64}, _SMOKE_TRAIN),
        'digits': TaskPlan({}, _SMOKE_TRAIN),
        'translate': TaskPlan({'max_value': 1000, 'test_size': 64}, _SMOKE_TRAIN),
        'pdigits': TaskPlan({}, _SMOKE_TRAIN, archs=('cnn', 'vit', 'bigru')),
        'selective_copy': TaskPlan({'length': 16, 'num_tokens': 4, 'eval_size': 64},
                                   _SMOKE_TRAIN, archs=('gru', 'transformer', 'lru')),
        'mqar': TaskPlan({'num_pairs': 8, 'num_queries': 4, 'vocab_size': 32,
                          'eval_size': 64}, _SMOKE_TRAIN, archs=('rnn', 'decoder', 'tcn')),
        'listops': TaskPlan({'max_depth': 4, 'max_args': 5, 'min_length': 16,
                             'max_length': 48, 'num_examples': 640, 'test_fraction': 0.1},
                            _SMOKE_TRAIN, archs=('bilstm', 'transformer', 'lru')),
        'lm': TaskPlan({'length': 32, 'eval_size': 64}, _SMOKE_TRAIN,
                       archs=('lstm', 'decoder', 'tcn')),
        'forecast': TaskPlan({'length': 16, 'horizon': 4, 'train_length': 600,
                              'test_length': 200}, _SMOKE_TRAIN,
                             archs=('gru', 'transformer', 'lru')),
    }))


register(Suite(
    name='quick',
    doc="""Every architecture on the tasks that show what it does, at size small (100k).

    Command: archbench run   (same as: archbench run --suite quick)
    Runtime: 4 min 39 s measured on a 2-core CPU (25 cells), compilation included. To
    fit, each task runs the architectures whose comparison matters most there (every
    architecture appears at least once; `--archs` runs others too); `standard` runs the
    full matrix of these tasks. Reference run: results/quick-cpu/.
    Results: adding (T=30): the gated RNNs, transformer, TCN and LRU solve it (MSE < 0.01)
    while the Elman RNN only beats the 0.167 baseline; copy (T=10): attention solves it
    and the LSTM sits near the memoryless baseline, as Arjovsky et al. (2016) report;
    digits: the CNN near 98%, ViT, transformer and bidirectional RNNs 88-96%; translate: the
    encoder-decoder and the prefix-LM decoder above 95% exact match; lm: the LSTM and the
    decoder at 1.32 and 1.34 bits/char (floor 1.28, unigram 2.95), 97.5% of their sampled
    characters allowed by the source; forecast: the LSTM and the TCN at MSE 0.015 and
    0.017, far below linear AR's 0.104 (persistence 0.48).
    """,
    size='small',
    tasks={
        'adding': TaskPlan({'length': 30}, TrainConfig(
            steps=600, batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=50),
            archs=('rnn', 'lstm', 'gru', 'birnn', 'transformer', 'tcn', 'lru')),
        'copy': TaskPlan({'length': 10}, TrainConfig(
            steps=800, batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=50),
            per_arch_train={'gru': {'lr': 1e-2}},
            archs=('rnn', 'lstm', 'gru', 'transformer', 'tcn', 'lru')),
        'digits': TaskPlan({}, TrainConfig(
            steps=300, batch_size=32, lr=3e-3, warmup_steps=30, steps_per_dispatch=50),
            per_arch_train={'cnn': {'steps': 150}, 'bilstm': {'steps': 600},
                            'bigru': {'steps': 600}},
            archs=('cnn', 'vit', 'transformer', 'bilstm', 'bigru')),
        'translate': TaskPlan({}, TrainConfig(
            steps=1000, batch_size=32, lr=3e-3, warmup_steps=50, steps_per_dispatch=50),
            archs=('lstm', 'decoder', 'encdec')),
        # A small source (8 characters, 3 allowed after each pair: 64 contexts), so that
        # 400 steps reach the entropy floor; samples are scored for validity.
        'lm': TaskPlan({'length': 32, 'alphabet_size': 8, 'support': 3}, TrainConfig(
            steps=400, batch_size=32, lr=3e-3, warmup_steps=30, steps_per_dispatch=50),
            archs=('lstm', 'decoder')),
        'forecast': TaskPlan({'length': 32, 'horizon': 8}, TrainConfig(
            steps=300, batch_size=32, lr=3e-3, warmup_steps=30, steps_per_dispatch=50),
            archs=('lstm', 'tcn')),
    }))


register(Suite(
    name='standard',
    doc="""The full matrix: every architecture x every task it can serve, at size small.

    Command: archbench run --suite standard
    Runtime: 10 min 9 s measured on a 2-core CPU (57 cells), compilation included.
    Reference run: results/standard-cpu/.
    Results: as `quick` for the cells they share, with the same training budgets; the
    other pairs fill in the matrix (e.g. every sequence model on digits as a 64-step pixel
    sequence, every causal model on translate as a prefix language model). On forecast
    every model beats linear AR (MSE 0.104), from the Elman RNN's 0.040 to the LRU's and
    transformer's 0.0125; on lm every causal model is within 5% of the entropy rate.
    """,
    size='small',
    tasks={name: dataclasses.replace(plan, archs=None)
           for name, plan in get('quick').tasks.items()}))


# ---------------------------------------------------------------------------------------
# Long-range dependency studies (benchmarks/lrd.py): accuracy versus length at a fixed
# parameter budget and training budget, the longest solved length, and gradient versus
# distance at initialisation and after training.

_LRD_ARCHS = ('rnn', 'lstm', 'gru', 'transformer', 'lru', 'tcn')

register(Suite(
    name='lrd-cpu',
    doc="""Long-range dependencies on a CPU: six families, adding and copy at growing lengths.

    Accuracy versus length, the longest solved length and gradient-versus-distance curves
    (at init and after training) for rnn, lstm, gru, transformer, lru and tcn.

    Command: archbench run --suite lrd-cpu
    Runtime: 8 min 21 s measured on a 2-core CPU (42 cells at size tiny, compilation
    included). Reference run, tables and plots: results/lrd-cpu/.
    Results: the Elman RNN's gradient decays fastest (about e^-0.22 per step at init on
    adding, a horizon of 35 steps, and faster still after training, e^-0.49) and it solves
    adding only at T=16; LSTM and GRU decay as fast at init (flax's gates start half open)
    but learn to carry the gradient (e^-0.002 after training) and solve adding to T=128;
    attention shows no decay at any distance, the LRU and the TCN very little, and all
    three solve every length given, their limit being step cost (attention's grows
    quadratically with T) rather than memory. On copy, which needs ten symbols held over the
    whole delay, no RNN gets past the memoryless baseline in this budget while attention,
    LRU and TCN solve every length.
    """,
    size='tiny',
    archs=_LRD_ARCHS,
    tasks={
        # The LRU trains with a larger step: at 3e-3 it had not fitted adding at T=128
        # after 1000 steps (MSE 0.042) though its gradient barely decays; at 1e-2 it
        # does (0.0076). The others keep quick's 3e-3.
        'adding': TaskPlan(
            {'eval_size': 500},
            TrainConfig(steps=1000, batch_size=32, lr=3e-3, warmup_steps=50,
                        steps_per_dispatch=50),
            per_arch_train={'lru': {'lr': 1e-2}},
            sweep=('length', (16, 32, 64, 128)), gradient_probe_at=(128,)),
        'copy': TaskPlan(
            {'eval_size': 500},
            TrainConfig(steps=600, batch_size=32, lr=3e-3, warmup_steps=50,
                        steps_per_dispatch=50),
            sweep=('length', (8, 32, 64)), gradient_probe_at=(64,)),
    }))

_LRD_TRAIN = TrainConfig(steps=3000, batch_size=64, lr=1e-3, warmup_steps=200,
                         steps_per_dispatch=100)
_LRD_LENGTHS = (16, 32, 64, 128, 256, 512, 1024)

register(Suite(
    name='lrd',
    doc="""Long-range dependencies, the full study for an accelerator (840 cells).

    Every sequence architecture on the four long-range tasks from 16 to 1024 steps, three
    seeds.

    Command: archbench run --suite lrd
    Runtime: not measured (no accelerator was available when it was written). It is 840
    cells (10 architectures x 4 tasks x 7 lengths x 3 seeds) of 3000 steps each at up to
    1024 positions: plan for hours, not minutes, on one GPU. `--tasks`, `--archs` and
    `--seed` run parts of it.
    Results (expected from lrd-cpu and the literature, not yet measured): the Elman RNN's
    longest solved length is the shortest on every task; LSTM and GRU reach further on
    adding; on the content-dependent tasks (selective_copy, mqar) attention solves every
    length while time-invariant mixers (the TCN, and the LRU, which has no input-dependent
    gating) fall off, as Gu & Dao (2023) and Arora et al. (2023) report.
    """,
    size='small',
    seeds=(0, 1, 2),
    tasks={
        'adding': TaskPlan({'eval_size': 1000}, _LRD_TRAIN,
                           sweep=('length', _LRD_LENGTHS), gradient_probe_at=(256,)),
        'copy': TaskPlan({'eval_size': 1000}, _LRD_TRAIN,
                         sweep=('length', _LRD_LENGTHS), gradient_probe_at=(256,)),
        'selective_copy': TaskPlan({'eval_size': 1000}, _LRD_TRAIN,
                                   sweep=('length', _LRD_LENGTHS), gradient_probe_at=(256,)),
        'mqar': TaskPlan({'eval_size': 1000, 'num_queries': 8, 'vocab_size': 1024},
                         _LRD_TRAIN, sweep=('num_pairs', (8, 16, 32, 64, 128, 256, 512)),
                         gradient_probe_at=(128,)),
    }))


# The real datasets (TFDS; see data/tfds_tasks.py). Not in smoke/quick/standard: they need
# data prepared beforehand.
_IMAGE_TRAIN = TrainConfig(steps=3000, batch_size=128, lr=3e-3, warmup_steps=100,
                           steps_per_dispatch=100, eval_batch_size=1000)
_PIXEL_TRAIN = TrainConfig(steps=5000, batch_size=128, lr=1e-3, warmup_steps=200,
                           steps_per_dispatch=100, eval_batch_size=1000)
_SEQUENCE_ARCHS = ('lstm', 'gru', 'transformer', 'tcn', 'lru')
# 8 blocks of kernel 3: a receptive field of 1 + 4 * 255 = 1021 steps, so the TCN's last
# position sees (nearly) the whole 784/1024-step sequence it classifies; the default 6
# blocks see 253. About a third more parameters than the budget.
_WHOLE_SEQUENCE_TCN = {'tcn': {'num_blocks': 8}}

register(Suite(
    name='real',
    doc="""Real datasets through TFDS: images, pixel sequences, byte-level text, characters.

    Command: archbench data prepare NAME   (once per dataset, on a machine with internet:
               mnist, fashion_mnist, cifar10, imdb, shakespeare; needs the `prepare` extra)
             archbench run --suite real [--data_dir DIR]
    Runtime: not measured (it was written where neither an accelerator nor the data was
    available). Estimated from its step counts at about 1-1.5 h on one current GPU, most
    of it the recurrent cells on 784-1024 steps; on a 2-core CPU, many hours. Reading the
    data takes seconds per dataset, once per process. Offline or without the data, every
    cell of a missing dataset fails at once (status `error`, one line naming the directory
    and the `archbench data prepare` command) and the other cells still run.
    Results: expected from the literature, at larger budgets than size small (100k), so
    treat them as ceilings. mnist / fashion_mnist: a small CNN ~99% / ~90%. cifar10: small
    CNNs 70-80%. smnist / pmnist (Arjovsky et al. 2016; Bai et al. 2018): LSTM ~98% /
    ~88-92% when well tuned (Bai et al. report 87% / 86% for theirs), GRU ~96% / ~87%, TCN
    99% / 97%. scifar (LRA Image, grayscale): Transformers 42-45%, S4 88%, LRU ~89%. imdb
    (LRA Text, bytes; LRA truncates at 4,000, here 1,024): Transformers ~64-65%, S4 ~87%,
    LRU ~89%. shakespeare: eval/loss in nats per character (÷ ln 2 for bits) against the
    unigram baseline computed from the data; nanoGPT's 10.7M-parameter character model
    reaches ~1.47 nats, a 100k model lands well above that.
    """,
    size='small',
    tasks={
        'mnist': TaskPlan({}, _IMAGE_TRAIN, archs=('cnn', 'vit')),
        'fashion_mnist': TaskPlan({}, _IMAGE_TRAIN, archs=('cnn', 'vit')),
        'cifar10': TaskPlan({}, dataclasses.replace(_IMAGE_TRAIN, steps=5000),
                            archs=('cnn', 'vit')),
        'smnist': TaskPlan({}, _PIXEL_TRAIN, archs=_SEQUENCE_ARCHS,
                           arch_overrides=_WHOLE_SEQUENCE_TCN),
        'pmnist': TaskPlan({}, _PIXEL_TRAIN, archs=_SEQUENCE_ARCHS,
                           arch_overrides=_WHOLE_SEQUENCE_TCN),
        'scifar': TaskPlan({}, dataclasses.replace(_PIXEL_TRAIN, batch_size=64),
                           archs=('lstm', 'transformer', 'tcn', 'lru'),
                           arch_overrides=_WHOLE_SEQUENCE_TCN),
        'imdb': TaskPlan({'length': 1024}, TrainConfig(
            steps=3000, batch_size=32, lr=1e-3, warmup_steps=200, steps_per_dispatch=100,
            eval_batch_size=500), archs=('lstm', 'transformer', 'tcn', 'lru'),
            arch_overrides=_WHOLE_SEQUENCE_TCN),
        'shakespeare': TaskPlan({'length': 256}, TrainConfig(
            steps=5000, batch_size=64, lr=1e-3, warmup_steps=200, steps_per_dispatch=100,
            eval_batch_size=100), archs=('lstm', 'gru', 'transformer', 'decoder', 'tcn', 'lru')),
    }))
