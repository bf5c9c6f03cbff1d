"""The evaluator contract and its registry.

A cell's measurement reads: build -> train -> evaluate -> evaluators (runner.measure_cell).
An evaluator is a named way of measuring beyond the held-out evaluation, with hooks the
runner calls at fixed points, each given the cell's Context:

  before_training(ctx)        the model is built and initialised, nothing compiled yet
  after_dispatch(ctx, step)   after each training dispatch (`steps_per_dispatch` steps),
                              outside the timed window; it must read what it measured back
                              to the host before returning, so that no device work of its
                              own runs into the next timed window
  after_training(ctx)         after the held-out evaluation, or in its place for an
                              evaluator that `replaces_evaluation`

It writes into ctx.metrics (scalars, or lists for curves by distance), ctx.perf and
ctx.curves (lists of [step, value]) under the keys it declares, and names the report
section (benchmarks/results/sections.py) that shows them.

An evaluator runs on a cell when its `applies(cell, task)` says so (the built-in studies:
from the cell's probes, eval_lengths or task), or when the cell names it
(`Cell.evaluators`, from a suite's `evaluators` setting). Hooks run in registry order: the
built-ins first, then plug-ins in the order they registered.

This module imports no JAX, and the built-in evaluators (which do) are imported on the
registry's first look-up, so that a plug-in can register an evaluator and its report section
and `archbench report --plugin FILE` loads it without JAX.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable

from archbench.benchmarks.core import Cell

# The built-in evaluators' modules (each registers the evaluator of the same name), in the
# order their hooks run: before training, the sweep marker, then the gradient probe; after
# training, the gradient probe, the lengths, then sampling text and images, then the speech
# tasks' example spectrograms (the order of a record's keys).
BUILT_IN = ('length_sweep', 'gradient', 'cost', 'lengths', 'sampling', 'images',
            'spectrograms')


@dataclasses.dataclass
class Context:
  """One cell's measurement as its evaluators see it. `state` is the training state
  (parameters, optimiser state, step): the initial one before training, the current one
  after each dispatch, the trained one after training. `metrics`, `perf` and `curves` are
  the record's sections being filled. `kept` holds what an evaluator carries from one hook
  to the next, under its own name (e.g. a probe compiled before training)."""
  cell: Cell
  arch: Any          # archs.ArchSpec
  config: Any        # the backbone's config
  task: Any          # data.Task, built for the cell's seed and parameters
  model: Any         # the harness's TaskModel
  parallel: Any      # parallel.DataParallel: the devices the cell's batch is split over
  state: Any         # train.TrainState
  train_key: Any     # the key dispatch i folds i into for its batches
  num_dispatches: int
  metrics: dict[str, Any]
  perf: dict[str, Any]
  curves: dict[str, list]
  kept: dict[str, Any] = dataclasses.field(default_factory=dict)
  # The cell's training settings as resolved for this model: a FLOP budget sets the steps.
  train: Any = None  # core.TrainConfig

  @property
  def params(self):
    return self.state.params

  @property
  def fast_compile(self) -> bool:
    return self.cell.fast_compile

  def key(self, stream):
    """The cell's key for one of data.spec.Stream's random streams."""
    from archbench.data.spec import stream_key  # imports JAX: only when a hook runs
    return stream_key(self.cell.seed, stream)


Hook = Callable[[Context], None]


@dataclasses.dataclass(frozen=True)
class EvaluatorSpec:
  """A way of measuring a cell. `metrics`, `perf` and `curves` name the keys it writes in
  those record sections (<…> marks a part that varies); `section` is the report section
  that shows them (None: the core tables do)."""
  name: str
  description: str
  applies: Callable[[Cell, Any], bool] | None = None  # (cell, task); None: where named
  before_training: Hook | None = None
  after_dispatch: Callable[[Context, int], None] | None = None
  after_training: Hook | None = None
  replaces_evaluation: bool = False
  metrics: tuple[str, ...] = ()
  perf: tuple[str, ...] = ()
  curves: tuple[str, ...] = ()
  section: str | None = None

  def __post_init__(self):
    if self.replaces_evaluation and self.after_training is None:
      raise ValueError(f'evaluator {self.name!r} replaces the evaluation, so it needs an '
                       'after_training hook')


_REGISTRY: dict[str, EvaluatorSpec] = {}


def register(spec: EvaluatorSpec) -> EvaluatorSpec:
  if spec.name in _REGISTRY:
    raise ValueError(f'evaluator {spec.name!r} registered twice')
  _REGISTRY[spec.name] = spec
  return spec


def _load_built_ins() -> None:
  for module in BUILT_IN:
    importlib.import_module(f'{__package__}.{module}')


def all_evaluators() -> list[EvaluatorSpec]:
  """Every evaluator in the order its hooks run: the built-ins, then plug-ins'."""
  _load_built_ins()
  return [_REGISTRY[name] for name in BUILT_IN] + [
      spec for name, spec in _REGISTRY.items() if name not in BUILT_IN]


def names() -> list[str]:
  return [spec.name for spec in all_evaluators()]


def get(name: str) -> EvaluatorSpec:
  _load_built_ins()
  if name not in _REGISTRY:
    raise KeyError(f'unknown evaluator {name!r}; valid: {", ".join(names())}')
  return _REGISTRY[name]


def for_cell(cell: Cell, task) -> list[EvaluatorSpec]:
  """The evaluators that run on `cell` (whose task is built as `task`), in hook order;
  KeyError for a name the cell gives that no evaluator has."""
  for name in cell.evaluators:
    get(name)
  return [spec for spec in all_evaluators()
          if spec.name in cell.evaluators or (spec.applies is not None
                                              and spec.applies(cell, task))]


def describe() -> dict[str, dict[str, Any]]:
  """What `archbench list` shows of each evaluator, as plain data."""
  return {spec.name: {'description': spec.description,
                      'runs': 'where named' if spec.applies is None else 'where its study asks',
                      'replaces_evaluation': spec.replaces_evaluation,
                      'metrics': list(spec.metrics), 'perf': list(spec.perf),
                      'curves': list(spec.curves), 'section': spec.section}
          for spec in all_evaluators()}


def list_lines(described: dict[str, dict[str, Any]], width: int) -> list[str]:
  """`archbench list`'s lines for the evaluators `describe()` gave, names padded to `width`."""
  lines = ['Evaluators (the built-ins run where a cell\'s study asks for them; '
           '--config.evaluators=NAME,... runs any on every cell):']
  for name, e in described.items():
    writes = ', '.join(e['metrics'] + [f'perf {k}' for k in e['perf']]
                       + [f'curve {k}' for k in e['curves']])
    section = f'; report section {e["section"]}' if e['section'] else ''
    replaces = '; in place of the held-out evaluation' if e['replaces_evaluation'] else ''
    lines.append(f'  {name:{width}s} {e["description"]} [writes {writes}{replaces}{section}]')
  return lines
