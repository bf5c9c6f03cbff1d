"""Measuring one cell: build -> train -> evaluate -> evaluators (run_cell).

A cell never raises: an exception, a NaN loss or an out-of-memory becomes the record's
status, and the suite (suite.py) goes on to the next cell. Ways of measuring beyond the
training figures and the held-out evaluation are evaluators (harness/evaluators/), which
the runner calls at fixed points through their hooks.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import pathlib
import platform
import time
import traceback
from typing import Any, Callable

import jax
import numpy as np

from archbench import archs
from archbench import data
from archbench.benchmarks.core import (Cell, CellTimeout, Diverged, Execution, UsageError,
                                       one_line, usage_errors)
from archbench.benchmarks.harness import evaluation
from archbench.benchmarks.harness import evaluators as evaluators_lib
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.harness import train as train_lib
from archbench.benchmarks.harness.checkpoint import CellCheckpoints
from archbench.benchmarks.harness.parallel import DataParallel
from archbench.benchmarks.measure import timing
from archbench.benchmarks.results import metrics as metrics_lib
from archbench.benchmarks.results import records
from archbench.data.spec import Stream, stream_key

OnStep = Callable[[int, int, float], None]  # (step, steps, train loss) after each dispatch
DEFAULT_EXECUTION = Execution()  # no time limit, checkpoints every 5 min for long cells


def _status_of(error: BaseException) -> str:
  text = f'{type(error).__name__}: {error}'
  if 'RESOURCE_EXHAUSTED' in text or isinstance(error, MemoryError):
    return 'oom'
  if isinstance(error, CellTimeout):
    return 'timeout'
  return 'diverged' if isinstance(error, Diverged) else 'error'


def _error_text(error: BaseException) -> str:
  """The message and the innermost frame of our code, short enough for a table."""
  frames = [f for f in traceback.extract_tb(error.__traceback__)
            if '/site-packages/' not in f.filename]
  where = f' (at {pathlib.Path(frames[-1].filename).name}:{frames[-1].lineno})' if frames else ''
  return f'{one_line(error, 500)}{where}'


def _device_peak_in_use() -> int | None:
  """The device's high-water mark so far: it covers the whole process, not one cell."""
  stats = jax.local_devices()[0].memory_stats() or {}
  return stats.get('peak_bytes_in_use')


def cell_device_peak(before: int | None, after: int | None) -> int | None:
  """A cell's own device peak from the process-wide high-water marks before and after it:
  exact when the cell raised the mark, unknown (None) when an earlier cell of the process
  had already gone higher (the device keeps no per-cell peak to reset)."""
  if before is None or after is None or after <= before:
    return None
  return after


def _xla_flops_per_step(compiled) -> float | None:
  """XLA's FLOP count of one optimiser step, read off the compiled training chunk: the
  chunk is a lax.scan over steps and cost_analysis() counts a loop body once, so its total
  is one step (tests/test_flops.py pins this against the analytic count)."""
  try:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost['flops']) if cost and 'flops' in cost else None
  except Exception:  # not every backend implements it
    return None


def prepare(cell: Cell, build_task: bool = True):
  """Resolve a cell into (arch spec, backbone config, task, model); raises UsageError for a
  cell that cannot run (unknown name, incompatible pair, bad override).

  build_task=False checks the cell from its task's spec alone and returns None for the
  task: a dataset task then reads no data, so that checking a whole suite before running
  it is cheap, and a dataset that is not prepared fails its own cells (status `error`)
  instead of the whole run.
  """
  with usage_errors():
    arch, task_entry = archs.get(cell.arch), data.get(cell.task)
    archs.registry.budget(cell.size)
  try:
    task = task_entry.build(cell.seed, **cell.task_params) if build_task else None
    spec = task.spec if task is not None else task_entry.spec(**cell.task_params)
  except (KeyError, ValueError) as e:
    raise UsageError(str(e.args[0])) from None
  model_lib.check_compatible(arch, spec)
  config = model_lib.resolve_config(arch, cell.size, spec, cell.arch_overrides,
                                    longest_input(cell, spec))
  if cell.arch_overrides and not build_task:  # a bad override fails here, not mid-run
    try:
      arch.param_count(config)
    except Exception as e:
      raise UsageError(f'{cell.arch} cannot be built with {cell.arch_overrides}: '
                       f'{one_line(e, 200)}') from None
  return arch, config, task, model_lib.build_model(arch, config, spec, dtype=cell.precision)


def train_flops_per_example(cell: Cell) -> float:
  """The analytic training FLOPs of one example of the cell (forward and backward), from
  its task's spec alone: what a FLOP budget (train.budget_flops) is spent in."""
  arch, spec = archs.get(cell.arch), data.get(cell.task).spec(**cell.task_params)
  config = model_lib.resolve_config(arch, cell.size, spec, cell.arch_overrides,
                                    longest_input(cell, spec))
  return model_lib.train_flops(arch, config, spec)


def longest_input(cell: Cell, spec) -> int:
  """The longest sequence the cell's model reads: its task's, or, where it is also
  evaluated at other lengths (`eval_lengths`), the longest of those; a backbone with a
  finite receptive field is deepened to see all of it (model.resolve_config)."""
  if not cell.eval_lengths:
    return spec.longest_sequence
  at_longest = data.registry.at_length(cell.task_params, max(cell.eval_lengths))
  return max(spec.longest_sequence, data.spec_of(cell.task, **at_longest).longest_sequence)


def measure_cell(cell: Cell, out: dict[str, Any], on_step: OnStep | None = None,
                 execution: Execution = DEFAULT_EXECUTION,
                 checkpoint_dir: pathlib.Path | None = None) -> None:
  """Build, train, evaluate and run the evaluators of one cell, filling `out` ({'config',
  'metrics', 'perf', 'curves'}) as it goes, so that what was measured before a failure is
  kept. Raises on failure (run_cell turns that into a status).

  With `checkpoint_dir`, training resumes from the checkpoint there if there is one, and
  saves one as `execution` says; past `execution.time_limit_s` (checked between
  dispatches) the cell stops with CellTimeout.
  """
  started = time.monotonic()
  peak_before = _device_peak_in_use()
  ctx, optimizer = _build(cell, out, execution)
  chosen = evaluators_lib.for_cell(cell, ctx.task)
  for evaluator in chosen:
    if evaluator.before_training is not None:
      evaluator.before_training(ctx)
  _train(ctx, optimizer, chosen, on_step, execution, checkpoint_dir, started)
  if cell.settings_from.get('from') == 'trial':
    # A tuning trial is judged on validation alone: it never reads the test set (nor runs
    # the evaluators, which measure the trained model), so no test figure exists before
    # the selected settings' final runs.
    out['config']['test'] = 'not evaluated: a tuning trial (validation only)'
    ctx.perf['device_peak_bytes'] = cell_device_peak(peak_before, _device_peak_in_use())
    return
  replacing = [e for e in chosen if e.replaces_evaluation]
  for evaluator in replacing:
    evaluator.after_training(ctx)
  if not replacing:
    _evaluate(ctx)
  ctx.perf['device_peak_bytes'] = cell_device_peak(peak_before, _device_peak_in_use())
  for evaluator in chosen:
    if evaluator.after_training is not None and not evaluator.replaces_evaluation:
      evaluator.after_training(ctx)


def _build(cell: Cell, out: dict[str, Any], execution: Execution):
  """(the cell's Context, its optimiser): the model and its initial training state; the
  record's config and size figures."""
  arch, config, task, model = prepare(cell)
  spec = task.spec
  tc = resolved_train(cell.train, model_lib.train_flops(arch, config, spec))
  if task.val_data is None and (tc.stop_at_target or tc.eval_weights != 'final'):
    raise UsageError(f'task {cell.task} has no validation set: train.stop_at_target and '
                     'train.eval_weights=best_val need one (Task.val_data)')
  parallel = DataParallel.over(execution.devices, (tc.batch_size,))
  optimizer = train_lib.make_optimizer(tc)
  state = parallel.replicate(train_lib.init_state(model, task, optimizer,
                                                  stream_key(cell.seed, Stream.INIT),
                                                  tc.batch_size))
  params = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(state.params))
  backbone_params = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(
      state.params['params']['backbone']))
  task_spec = {'kind': spec.kind, 'length': spec.length, 'metric': spec.metric,
               'higher_is_better': spec.higher_is_better, 'solved': spec.solved}
  budget = archs.registry.budget(cell.size)
  # What the backbone's output can see of its input (a finite receptive field only).
  coverage = arch.coverage(config, longest_input(cell, spec))
  out.update({'config': {'arch': config, 'task': task.params, 'task_spec': task_spec,
                         **({'coverage': coverage} if coverage else {}),
                         'train': tc, 'precision': cell.precision,
                         # Overrides of the backbone config move it off the size's budget.
                         # What was held equal: the parameters (unless overridden), and
                         # the steps, the training FLOPs or the seconds of training.
                         'budget': {'size': cell.size, 'params': budget,
                                    'overridden_by': sorted(cell.arch_overrides),
                                    'matched': tc.budget_matched, 'steps': tc.steps,
                                    **({'flops': tc.budget_flops} if tc.budget_flops else {}),
                                    **({'seconds': tc.budget_s} if tc.budget_s else {})},
                         # The test metrics are of these weights: 'final' (after the last
                         # step) or 'best_val' (the best validation evaluation's).
                         'eval_weights': tc.eval_weights,
                         'validation': {'examples': task.val_size,
                                        'every_steps': tc.evaluation_steps(tc.steps)}},
              'metrics': {},
              'perf': {'params': params, 'backbone_params': backbone_params,
                       **parallel.describe(tc.batch_size)}})
  out.setdefault('curves', {})
  ctx = evaluators_lib.Context(
      cell=cell, arch=arch, config=config, task=task, model=model, parallel=parallel,
      state=state, train_key=data.spec.train_key(cell.seed),
      num_dispatches=len(_dispatches(tc)), metrics=out['metrics'], perf=out['perf'],
      curves=out['curves'], train=tc)
  return ctx, optimizer


def resolved_train(tc, flops_per_example: float):
  """The cell's TrainConfig with a FLOP budget turned into steps: as many whole steps as
  `budget_flops` buys at the analytic training FLOPs of one step."""
  if not tc.budget_flops:
    return tc
  steps = int(tc.budget_flops // (flops_per_example * tc.batch_size))
  if steps < 1:
    raise UsageError(f'train.budget_flops={tc.budget_flops:g} buys no step: one step costs '
                     f'{flops_per_example * tc.batch_size:.3g} FLOPs')
  return dataclasses.replace(tc, steps=steps, warmup_steps=min(tc.warmup_steps, steps))


def _dispatches(tc) -> list[int]:
  """The steps of each dispatch: k = steps_per_dispatch each, and one of the remainder when
  k does not divide the steps (so a cell trains exactly the steps asked, the steps its
  learning-rate schedule decays over)."""
  k = max(1, min(tc.steps_per_dispatch, tc.steps))
  num_chunks, remainder = divmod(tc.steps, k)
  return [k] * num_chunks + ([remainder] if remainder else [])


class Validation:
  """The validation set during training: evaluated every `every` steps (at dispatch
  boundaries), it keeps the curve of every validation metric, the first evaluation at or
  past the task's solved threshold (steps, training seconds and FLOPs to target), and the
  best weights by the headline metric. Its time is neither training time nor a step."""

  def __init__(self, ctx: evaluators_lib.Context, every: int, flops_per_step: float):
    tc, task = ctx.train, ctx.task
    self.ctx, self.every, self.flops_per_step = ctx, every, flops_per_step
    self.evaluate = evaluation.HeldOut(ctx.model, task.spec, task.val_data, tc, ctx.parallel,
                                       ctx.fast_compile, evaluation.VALIDATION)
    self.key = metrics_lib.validation_key(task.spec.metric)
    self.last_step, self.seconds, self.count = -1, 0.0, 0
    # (value, step, metrics, params): the params are kept only where they are evaluated.
    self.keep_best = tc.eval_weights == 'best_val'
    self.best = None
    self.target = None  # (step, training seconds) of the first evaluation that solved it

  def due(self, step: int, final: bool) -> bool:
    if step == self.last_step:
      return False
    return final or (self.every > 0 and step // self.every > max(self.last_step, 0) // self.every)

  def __call__(self, step: int, train_s: float) -> bool:
    """Evaluate the current weights; True when this evaluation reached the target."""
    start = time.perf_counter()
    params = self.ctx.params
    values, _ = self.evaluate(params)
    self.seconds += time.perf_counter() - start
    self.last_step, self.count = step, self.count + 1
    if not all(math.isfinite(v) for v in values.values()):
      raise Diverged(f'validation gave non-finite metrics at step {step}: {values}')
    for key, value in values.items():
      self.ctx.curves.setdefault(key, []).append([step, value])
    spec, value = self.ctx.task.spec, values[self.key]
    if self.best is None or (value > self.best[0] if spec.higher_is_better
                             else value < self.best[0]):
      self.best = (value, step, values, params if self.keep_best else None)
    if self.target is None and spec.is_solved(value):
      self.target = (step, train_s)
      return True
    return False

  def record(self) -> None:
    """The validation figures in the record: `val/...` of the weights the test set
    evaluates, and the steps, seconds and FLOPs to target (None: never reached)."""
    ctx = self.ctx
    if self.keep_best and self.best is not None:
      _, step, values, params = self.best
      ctx.state = ctx.state._replace(params=params)
      ctx.metrics['eval_weights_step'] = step
    else:
      values = {k: v[-1][1] for k, v in ctx.curves.items()
                if k.startswith(evaluation.VALIDATION + '/')}
    ctx.metrics.update(values)
    step, seconds = self.target or (None, None)
    ctx.metrics.update(steps_to_target=step, time_to_target_s=seconds,
                       flops_to_target=None if step is None else step * self.flops_per_step)
    ctx.perf.update(val_evaluations=self.count, val_eval_s=self.seconds,
                    val_compile_s=self.evaluate.compile_s)


def _train(ctx: evaluators_lib.Context, optimizer,
           chosen: list[evaluators_lib.EvaluatorSpec],
           on_step: OnStep | None, execution: Execution,
           checkpoint_dir: pathlib.Path | None, started: float) -> None:
  """Train ctx.state for the cell's steps (or until its time budget is spent, or its
  target reached where it stops there), recording the training figures, the training and
  validation curves and the FLOPs; the evaluators' after_dispatch hooks run after each
  dispatch, outside its timing window."""
  cell, task, model, parallel = ctx.cell, ctx.task, ctx.model, ctx.parallel
  spec, tc = task.spec, ctx.train
  # Compile ahead of time, apart from any timing: the dispatch of k steps, and the one of
  # the remainder. Dispatch i draws its batches from fold_in(train_key, i): the batches
  # depend on the seed and the step alone, which is what lets a checkpointed cell resume
  # bit for bit.
  dispatches = _dispatches(tc)
  k, train_key = dispatches[0], ctx.train_key
  after_dispatch = [e.after_dispatch for e in chosen if e.after_dispatch is not None]
  arch, config = ctx.arch, ctx.config
  # FLOPs: analytic always (forward x (1 + the arch's backward factor)).
  flops = model_lib.train_flops(arch, config, spec) * tc.batch_size
  # A cost-sweep point times inference in place of evaluating: it is not validated either.
  validation = None
  if task.val_data is not None and not any(e.replaces_evaluation for e in chosen):
    validation = Validation(ctx, tc.evaluation_steps(tc.steps), flops)

  def compile_chunk(num_steps):
    chunk = functools.partial(train_lib.train_chunk, model=model, task=task,
                              optimizer=optimizer, batch_size=tc.batch_size,
                              num_steps=num_steps, parallel=parallel)
    return timing.compile_ahead(chunk, ctx.state, train_key, fast=cell.fast_compile)

  compiled = {}
  compiled[k], compile_s = compile_chunk(k)
  ctx.perf.update(compile_s=compile_s, **evaluation.memory(compiled[k]))
  if dispatches[-1] != k:  # the remainder
    compiled[dispatches[-1]], rest_compile_s = compile_chunk(dispatches[-1])
    ctx.perf['compile_s'] += rest_compile_s

  checkpoints = None
  first = 0
  if checkpoint_dir is not None and jax.process_count() == 1:
    # Several hosts resume at cell granularity: a checkpoint would need every process.
    checkpoints = CellCheckpoints(checkpoint_dir, every_steps=execution.checkpoint_every_steps,
                                  every_s=execution.checkpoint_every_s)
    restored = checkpoints.restore(ctx.state)
    if restored is not None:
      ctx.state, first = restored
      ctx.state = parallel.replicate(ctx.state)
      ctx.perf['resumed_at_step'] = int(ctx.state.step)

  # Train: every whole dispatch is a timing window; the first is the warm-up.
  chrono, losses = timing.Chrono(warmup_windows=1), []
  # The training curve: [step, mean loss of the dispatch ending there] per dispatch. A
  # resumed cell holds only the dispatches it ran itself, from its checkpoint's step on
  # (and its validation figures only the evaluations it ran itself).
  curve = ctx.curves.setdefault('train/loss', [])
  untimed_s = 0.0
  stopped = None  # why training ended before its steps: 'target' or 'budget_s'

  def training_s() -> float:
    return sum(s for s, _ in chrono.windows) + untimed_s

  def training_figures():
    step_s = chrono.median_s
    ctx.metrics.update({'train/loss': losses[-1] if losses else None,
                        'train/steps': int(ctx.state.step)})
    ctx.perf.update(train_s=training_s(), timed_windows=chrono.timed_windows)
    if step_s:
      ctx.perf.update(
          step_ms=1e3 * step_s, step_ms_min=1e3 * chrono.spread_s[0],
          step_ms_max=1e3 * chrono.spread_s[1], examples_per_s=tc.batch_size / step_s,
          tokens_per_s=tc.batch_size * spec.tokens_per_example / step_s)
    return step_s

  for i in range(first, len(dispatches)):
    size = dispatches[i]
    start = time.perf_counter()
    if size == k:
      ctx.state, loss = chrono.time(compiled[k], ctx.state, jax.random.fold_in(train_key, i),
                                    steps=k)
    else:
      ctx.state, loss = jax.block_until_ready(
          compiled[size](ctx.state, jax.random.fold_in(train_key, i)))
      untimed_s += time.perf_counter() - start
    losses.append(float(loss))
    step = int(ctx.state.step)
    curve.append([step, losses[-1]])
    if not math.isfinite(losses[-1]):
      ctx.metrics['train/loss'] = losses[-1]
      raise Diverged(f'training loss became {losses[-1]} at step {step}')
    for hook in after_dispatch:  # after the window: its time is in neither train_s nor a step
      hook(ctx, step)
    if on_step is not None:
      on_step(step, tc.steps, losses[-1])
    if tc.budget_s and training_s() >= tc.budget_s and i + 1 < len(dispatches):
      stopped = 'budget_s'
    last = stopped is not None or i + 1 == len(dispatches)
    if validation is not None and validation.due(step, last):
      if validation(step, training_s()) and tc.stop_at_target:
        stopped = 'target'
    if stopped:
      break
    if execution.time_limit_s is not None and time.monotonic() - started > execution.time_limit_s:
      training_figures()
      raise CellTimeout(f'time limit of {execution.time_limit_s:g} s reached at step '
                        f'{step} of {tc.steps}')
    if checkpoints is not None and i + 1 < len(dispatches):
      if i == first and first == 0:  # a short cell is cheaper to re-run than to checkpoint
        expected_s = (time.perf_counter() - start) / size * tc.steps
        if expected_s < execution.checkpoint_min_s:
          checkpoints = None
          continue
      if checkpoints.due(step):
        checkpoints.save(ctx.state, step, i + 1)
  step_s = training_figures()
  ctx.metrics['train/stopped'] = stopped  # None: trained every step it was given
  if validation is not None:
    if validation.due(int(ctx.state.step), True):  # e.g. a resumed cell with nothing left
      validation(int(ctx.state.step), training_s())
    validation.record()
    ctx.kept['validation'] = validation.evaluate  # its compiled function may serve the test

  # XLA's FLOP count only where the model itself has no scan, since cost_analysis()
  # counts a loop body once.
  peak, peak_source = timing.device_peak_flops(cell.precision)
  xla = None if arch.uses_scan else _xla_flops_per_step(compiled[k])
  ctx.perf.update(flops_per_step=flops, xla_flops_per_step=xla,
                  infer_flops_per_example=model_lib.forward_flops(arch, config, spec),
                  # MFU against the peak of every device the step ran on.
                  mfu=(flops / step_s / (peak * parallel.num_devices))
                  if peak and step_s else None, peak_flops=peak,
                  peak_flops_source=peak_source)


def _evaluate(ctx: evaluators_lib.Context) -> None:
  """The test evaluation of the trained parameters (the weights `eval_weights` names), once,
  after training, with the task's baselines and whether the cell solved the task."""
  spec, task = ctx.task.spec, ctx.task
  metrics, compile_s, run_s = evaluation.held_out(ctx.model, task, ctx.params, ctx.train,
                                                  ctx.parallel, ctx.fast_compile,
                                                  like=ctx.kept.get('validation'))
  ctx.metrics.update(metrics)
  if not all(math.isfinite(v) for v in metrics.values()):
    raise Diverged(f'evaluation gave non-finite metrics: {metrics}')
  ctx.metrics.update({f'baseline/{k}': v for k, v in spec.baselines.items()})
  ctx.metrics['solved'] = spec.is_solved(metrics[spec.metric])
  ctx.perf.update(eval_compile_s=compile_s, eval_examples_per_s=task.eval_size / run_s)


def base_record(cell: Cell, suite: str, run_id: str, env: dict[str, Any],
            error: BaseException | None = None) -> dict[str, Any]:
  """A cell's record before its measurements: identity, requested config, status. The
  cell itself (`config.cell`) is enough to run it again (`archbench run --from_record`)."""
  return {'schema': records.SCHEMA, 'run_id': run_id, 'cell_id': cell.digest,
          'suite': suite, 'arch': cell.arch, 'task': cell.task, 'size': cell.size,
          'seed': cell.seed,
          'config': {'cell': cell.to_dict(), 'task': cell.task_params,
                     'arch_overrides': cell.arch_overrides, 'train': cell.train,
                     'fast_compile': cell.fast_compile, 'probes': list(cell.probes),
                     # Where its settings came from: the suite's, or a tuning run's.
                     'settings': cell.settings_from or {'from': 'suite'}},
          'status': 'ok' if error is None else _status_of(error),
          'error': None if error is None else _error_text(error),
          'metrics': {}, 'perf': {}, 'curves': {}, 'env': env}


def run_cell(cell: Cell, *, suite: str, run_id: str, env: dict[str, Any],
             on_step: OnStep | None = None, execution: Execution = DEFAULT_EXECUTION,
             checkpoint_dir: pathlib.Path | None = None) -> dict[str, Any]:
  """Measure one cell and return its record; never raises."""
  record = base_record(cell, suite, run_id, env)
  partial: dict[str, Any] = {}
  try:
    measure_cell(cell, partial, on_step, execution, checkpoint_dir)
  except Exception as error:  # a failing cell is a result, not a crash
    record.update(status=_status_of(error), error=_error_text(error))
  record['config'].update(partial.get('config', {}))
  record['metrics'].update(partial.get('metrics', {}))
  record['perf'].update(partial.get('perf', {}))
  record['curves'].update(partial.get('curves', {}))
  record['ran_on'] = _ran_on(record['perf'].get('devices', 1))
  return record


def _ran_on(num_devices: int) -> dict[str, Any]:
  """Where a cell ran, seen by the process that ran it (the driver adds the executor): the
  host, the process and the devices the cell used; CUDA_VISIBLE_DEVICES too where set (a
  pinned worker's cuda:0 is the GPU it names)."""
  try:
    devices = [str(d) for d in jax.devices()[:num_devices]]
  except RuntimeError:  # no backend would start: the cell failed before using a device
    devices = []
  where = {'host': platform.node(), 'pid': os.getpid(), 'devices': devices}
  if 'CUDA_VISIBLE_DEVICES' in os.environ:
    where['cuda_visible_devices'] = os.environ['CUDA_VISIBLE_DEVICES']
  return where
