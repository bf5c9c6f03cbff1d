"""The harness's shared vocabulary, imported by everything else and importing nothing of it:
the cell and its identity, the training settings and execution it carries, the errors.
(What metric keys mean, and how they are built, is results/metrics.py.)

A cell is self-contained and serialisable: its dict (`Cell.to_dict`) is what a record
keeps, what `archbench run --from-record` re-runs, and (less where its settings came from)
what its identity is a digest of.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from typing import Any

# Numerics of a cell. 'bfloat16' is mixed precision: bf16 compute, float32 parameters,
# optimiser state, loss and normalisation statistics (archs/ and harness/model.py).
PRECISIONS = ('float32', 'bfloat16')
# What a cell_id measures, as a number: raise it with any change that makes an existing cell
# measure something else (its data, splits, training, evaluation or metrics), never for a
# refactor. Records carry it (env.protocol), so that runs made by different code can share
# one table (`archbench report A B`) only where they measure the same thing. 1: the
# fair-fights protocol (a validation split apart from test; docs/protocol.md).
PROTOCOL = 1


class UsageError(ValueError):
  """A request that cannot run (unknown name, incompatible pair, bad value): the CLI turns
  it into a one-line message and exit code 2."""


@contextlib.contextmanager
def usage_errors():
  """Registry look-ups raise KeyError naming the valid choices; for a user's request that
  is a usage error."""
  try:
    yield
  except KeyError as e:
    raise UsageError(e.args[0]) from None


def one_line(error: BaseException, limit: int = 300) -> str:
  """'Type: message' on one line, cut at `limit` characters: how a user's error (a plug-in's,
  a suite file's, a backbone's) is reported in a usage message or a record."""
  return f'{type(error).__name__}: {" ".join(str(error).split())[:limit]}'


class Diverged(RuntimeError):
  """The training loss or an evaluation metric became non-finite."""


class CellTimeout(RuntimeError):
  """A cell ran past its time limit (status `timeout`; what it measured is kept)."""


@dataclasses.dataclass(frozen=True)
class Execution:
  """How cells run, as opposed to what they measure: none of it is part of a cell's
  identity, so a cell resumed, checkpointed or given more time is the same experiment.

  time_limit_s: a cell still training after this long ends with status `timeout`,
    keeping what it measured; the run goes on. None: no limit.
  checkpoint_every_s, checkpoint_every_steps: a cell in flight saves its training state
    (orbax) at the first dispatch boundary after either; None turns a trigger off. A
    resumed run continues the cell in flight from its checkpoint.
  checkpoint_min_s: cells whose training is expected to take less than this (estimated
    after the first dispatch) never checkpoint: re-running them is cheaper.
  devices: data parallelism: each cell splits its batch over this many of the process's
    devices (0: all of them; on several hosts, all devices of all hosts), parameters
    replicated. The global batch, and so the experiment, stays the one the cell names.
  """
  time_limit_s: float | None = None
  checkpoint_every_s: float | None = 300.0
  checkpoint_every_steps: int | None = None
  checkpoint_min_s: float = 60.0
  devices: int = 1

  def __post_init__(self):
    if isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 0:
      raise UsageError(f'execution.devices must be a whole number >= 0 (0: every device), '
                       f'got {self.devices!r}')
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if field.name == 'devices':
        continue
      if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                or value < 0 or (value == 0 and field.name != 'checkpoint_min_s')):
        raise UsageError(f'execution.{field.name} must be a positive number or None, '
                         f'got {value!r}')


# Which weights a cell's test metrics are of: those after the last step, or those of the
# validation evaluation with the best headline metric.
EVAL_WEIGHTS = ('final', 'best_val')


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimisation of one cell: AdamW with linear warm-up then cosine decay over `steps`.

  What a cell's training is held to besides its parameter budget (`budget_matched`):
  `steps` optimiser steps; or, with `budget_flops` > 0, as many steps as that many
  training FLOPs buy at the model's analytic count per step (the schedule decays over
  them); or, with `budget_s` > 0, as many of `steps` as fit in that many seconds of
  training on the machine that runs it (compilation and evaluation not counted; the
  schedule still decays over `steps`), after which the cell evaluates normally.

  The validation set is evaluated every `eval_every` steps (at the first dispatch boundary
  at or after each multiple; None: about ten times over training, at whole dispatches; 0:
  at the end only), which records the validation curve and the first step at which the
  task's solved threshold was reached (`steps_to_target`); `stop_at_target` ends training
  there. `eval_weights` says which weights the test set then evaluates (EVAL_WEIGHTS).
  """
  steps: int = 200
  batch_size: int = 32
  lr: float = 1e-3
  warmup_steps: int = 20
  weight_decay: float = 0.01
  clip_norm: float = 1.0
  steps_per_dispatch: int = 10  # optimiser steps per compiled call; also the timing window
  eval_batch_size: int = 500
  eval_every: int | None = None
  stop_at_target: bool = False
  eval_weights: str = 'final'
  budget_flops: float = 0.0
  budget_s: float = 0.0

  def __post_init__(self):
    positive = ('steps', 'batch_size', 'lr', 'clip_norm', 'steps_per_dispatch',
                'eval_batch_size')
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if field.name == 'stop_at_target':
        if not isinstance(value, bool):
          raise UsageError(f'train.stop_at_target must be True or False, got {value!r}')
        continue
      if field.name == 'eval_weights':
        if value not in EVAL_WEIGHTS:
          raise UsageError(f'train.eval_weights {value!r} is not known; valid: '
                           f'{", ".join(EVAL_WEIGHTS)}')
        continue
      if field.name == 'eval_every' and value is None:
        continue
      if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f'train.{field.name} must be a number, got {value!r}')
      if value < 0 or (field.name in positive and value == 0):
        bound = '> 0' if field.name in positive else '>= 0'
        raise UsageError(f'train.{field.name} must be {bound}, got {value}')
    if self.budget_flops and self.budget_s:
      raise UsageError('train.budget_flops and train.budget_s are two budgets; set one')
    if self.stop_at_target and self.eval_every == 0:
      raise UsageError('train.stop_at_target needs validation during training: set '
                       'train.eval_every > 0 (or None: ten times over training)')

  @property
  def budget_matched(self) -> str:
    """What besides parameters this training holds equal: 'steps', 'flops' or 'seconds'."""
    return 'flops' if self.budget_flops else 'seconds' if self.budget_s else 'steps'

  def evaluation_steps(self, steps: int) -> int:
    """The validation interval in steps over `steps` steps of training (0: at the end);
    None's tenth of the steps is rounded up to whole dispatches, where evaluations fall."""
    if self.eval_every is None:
      k = max(1, min(self.steps_per_dispatch, steps))
      return -(-max(1, -(-steps // 10)) // k) * k
    return self.eval_every


# Fields added to TrainConfig after records were first written: a cell leaves them out of
# its identity at these defaults, so that earlier cells keep their digests.
TRAIN_ADDED = {'eval_every': None, 'stop_at_target': False, 'eval_weights': 'final',
               'budget_flops': 0.0, 'budget_s': 0.0}


# Task parameters added after records were first written, and the default at which a
# cell leaves them out: `pad_to` None (no further padding), `train_examples` None (the
# whole training part).
TASK_PARAMS_ADDED = {'pad_to': None, 'train_examples': None}


@dataclasses.dataclass(frozen=True)
class Cell:
  """One measurement: an architecture on a task at a size and seed, fully resolved.

  `arch_overrides` are backbone config fields set on top of the size's budget config (they
  change the parameter count, which every record carries); `task_params` are the task's
  generator parameters, complete (defaults included), so the cell does not depend on
  defaults that may change.
  """
  arch: str
  task: str
  size: str
  seed: int = 0
  task_params: dict[str, Any] = dataclasses.field(default_factory=dict)
  arch_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
  train: TrainConfig = TrainConfig()
  # Compile without backend optimisation: much faster compiles, slower steps. For suites
  # that check that everything runs (smoke), never for suites whose timings matter.
  fast_compile: bool = False
  # Long-range probes (harness/evaluators/): 'gradient' records gradient-versus-
  # distance curves at initialisation and after training; 'length' marks the cell as a
  # point of an accuracy-versus-length sweep (its record carries lrd/length). 'cost' marks
  # it as a point of a cost-versus-length sweep and adds a forward-only inference timing
  # (perf infer_ms; fitted by benchmarks/results/scaling.py).
  probes: tuple[str, ...] = ()
  precision: str = 'float32'  # one of PRECISIONS
  # Length generalisation: after training, also evaluate at each of these sequence
  # lengths (a held-out set of that length alone; evaluator 'lengths').
  eval_lengths: tuple[int, ...] = ()
  # Evaluators a user asked for by name (a suite's `evaluators`), on top of those the cell's
  # study runs by itself (harness/evaluators: the probes above, eval_lengths, sampling).
  evaluators: tuple[str, ...] = ()
  # Where the cell's training and backbone settings came from, e.g. {'from': 'tuned',
  # 'tuning': DIR, 'trial': 3} (benchmarks/tuning.py); {} is the suite's own. A label, not
  # a setting: the settings themselves are the identity, so it is left out of the digest
  # and of equality, and the same cell reached two ways is one experiment.
  settings_from: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

  def __post_init__(self):
    if self.precision not in PRECISIONS:
      raise UsageError(f'precision {self.precision!r} is not known; valid: '
                       f'{", ".join(PRECISIONS)}')
    object.__setattr__(self, 'eval_lengths', tuple(sorted({int(n) for n in self.eval_lengths})))
    object.__setattr__(self, 'evaluators', tuple(dict.fromkeys(self.evaluators)))
    # A task parameter added later, at its default, is the cell of records from before it
    # existed (TASK_PARAMS_ADDED): left out, so those cells keep their identity.
    object.__setattr__(self, 'task_params', {
        k: v for k, v in self.task_params.items()
        if not (k in TASK_PARAMS_ADDED and v == TASK_PARAMS_ADDED[k])})
    if self.eval_lengths and ('length' not in self.task_params
                              or min(self.eval_lengths) < 1):
      raise UsageError(f'eval_lengths {self.eval_lengths} for {self.task}: needs the task\'s '
                       '`length` in its parameters (suites fill every parameter in) and '
                       'lengths >= 1')

  @property
  def name(self) -> str:
    params = ','.join(f'{k}={v}' for k, v in self.task_params.items())
    precision = '' if self.precision == 'float32' else f'/{self.precision}'
    lengths = (f'/eval@{min(self.eval_lengths)}-{max(self.eval_lengths)}'
               if self.eval_lengths else '')
    extra = ''.join(f'/+{name}' for name in self.evaluators)
    return (f'{self.arch}/{self.task}{"[" + params + "]" if params else ""}/{self.size}'
            f'/s{self.seed}{precision}{lengths}{extra}')

  def to_dict(self) -> dict[str, Any]:
    """Plain JSON-able data; `Cell.from_dict` inverts it."""
    out = dataclasses.asdict(self)
    out['probes'] = list(self.probes)
    out['eval_lengths'] = list(self.eval_lengths)
    out['evaluators'] = list(self.evaluators)
    # Fields added later are left out at their defaults, so earlier cells keep their
    # identity (digest).
    for field, default in (('precision', 'float32'), ('eval_lengths', []), ('evaluators', []),
                           ('settings_from', {})):
      if out[field] == default:
        del out[field]
    for field, default in TRAIN_ADDED.items():
      if out['train'][field] == default:
        del out['train'][field]
    return json.loads(json.dumps(out, default=_plain))

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> Cell:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - known
    if unknown:
      raise UsageError(f'a cell has no field(s) {", ".join(sorted(unknown))}; '
                       f'valid: {", ".join(sorted(known))}')
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    train = d.get('train') or {}
    if set(train) - train_fields:
      raise UsageError(f'train has no field(s) {", ".join(sorted(set(train) - train_fields))}; '
                       f'valid: {", ".join(sorted(train_fields))}')
    return cls(**{**d, 'train': TrainConfig(**train), 'probes': tuple(d.get('probes', ())),
                  'eval_lengths': tuple(d.get('eval_lengths', ())),
                  'evaluators': tuple(d.get('evaluators', ()))})

  @property
  def digest(self) -> str:
    """The cell's identity: a digest of its fully resolved settings (canonical JSON), the
    same on every machine. Two cells with the same digest are the same experiment."""
    settings = {k: v for k, v in self.to_dict().items() if k != 'settings_from'}
    text = json.dumps(settings, sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value):
  """JSON for what dataclasses.asdict leaves: enums (by value), numpy scalars."""
  if hasattr(value, 'value'):
    return value.value
  if hasattr(value, 'item'):
    return value.item()
  raise TypeError(f'{type(value).__name__} is not serialisable: {value!r}')
