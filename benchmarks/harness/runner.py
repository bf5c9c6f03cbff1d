"""The one harness: every cell (arch, task, size, seed, overrides) goes through run_cell.

A cell never raises: an exception, a NaN loss or an out-of-memory becomes the record's
status, and run_suite goes on to the next cell.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import pathlib
import platform
import shutil
import sys
import time
import traceback
import uuid
from typing import Any, Callable

import jax
import numpy as np

from archbench import archs
from archbench import data
from archbench.benchmarks import plugins
from archbench.benchmarks.core import (Cell, CellTimeout, Diverged, Execution, UsageError,
                                       one_line, usage_errors)
from archbench.benchmarks.harness.checkpoint import CellCheckpoints
from archbench.benchmarks.harness import executors
from archbench.benchmarks.harness import generate
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.harness.parallel import DataParallel, is_writer
from archbench.benchmarks.harness import train as train_lib
from archbench.benchmarks.measure import timing
from archbench.benchmarks.probes import lrd
from archbench.benchmarks.progress import Progress
from archbench.benchmarks.results import records, report, tensorboard_events
from archbench.data import cache as data_cache
from archbench.data.spec import Stream, stream_key

OnStep = Callable[[int, int, float], None]  # (step, steps, train loss) after each dispatch
DEFAULT_EXECUTION = Execution()  # no time limit, checkpoints every 5 min for long cells
SINGLE_DEVICE = DataParallel(None)


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


def _memory(compiled) -> dict[str, int | None]:
  try:
    m = compiled.memory_analysis()
    peak = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
            - m.alias_size_in_bytes)
    return {'peak_bytes': int(peak), 'temp_bytes': int(m.temp_size_in_bytes),
            'argument_bytes': int(m.argument_size_in_bytes)}
  except Exception:  # some backends do not implement it
    return {'peak_bytes': None, 'temp_bytes': None, 'argument_bytes': None}


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


# Forward-only timing ('cost' cells): a warm-up call, then at least FORWARD_MIN_WINDOWS
# timed calls, more (up to FORWARD_MAX_WINDOWS) while they add up to under FORWARD_MIN_S, so
# that millisecond forwards are not timed from a handful of noisy calls.
FORWARD_MIN_WINDOWS, FORWARD_MAX_WINDOWS, FORWARD_MIN_S = 3, 20, 0.5


def time_forward(model, task, params, key: jax.Array, batch_size: int,
                 fast: bool = False, parallel: DataParallel = SINGLE_DEVICE
                 ) -> dict[str, Any]:
  """Forward-only inference on one batch of the training batch size, compiled ahead and
  timed by the one timer: what serving the model costs, apart from the training step (the
  evaluation's timing mixes in the loss over the held-out set at another batch size)."""
  spec = task.spec
  batch = jax.jit(task.train_batch, static_argnums=1,
                  out_shardings=parallel.batch_sharding())(key, batch_size)
  inputs = train_lib.model_args(spec, batch)
  forward = functools.partial(model.apply, train=False)
  compiled, compile_s = timing.compile_ahead(forward, params, *inputs, fast=fast)
  chrono = timing.Chrono(warmup_windows=1)
  chrono.time(compiled, params, *inputs)
  while (len(chrono.windows) <= FORWARD_MIN_WINDOWS or
         (len(chrono.windows) <= FORWARD_MAX_WINDOWS and
          sum(s for s, _ in chrono.windows[1:]) < FORWARD_MIN_S)):
    chrono.time(compiled, params, *inputs)
  forward_s = chrono.median_s
  return {'infer_ms': 1e3 * forward_s, 'infer_ms_min': 1e3 * chrono.spread_s[0],
          'infer_ms_max': 1e3 * chrono.spread_s[1], 'infer_windows': chrono.timed_windows,
          'infer_tokens_per_s': batch_size * spec.tokens_per_example / forward_s,
          'infer_compile_s': compile_s,
          'infer_peak_bytes': _memory(compiled)['peak_bytes']}


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
  config = model_lib.resolve_config(arch, cell.size, spec, cell.arch_overrides)
  if cell.arch_overrides and not build_task:  # a bad override fails here, not mid-run
    try:
      arch.param_count(config)
    except Exception as e:
      raise UsageError(f'{cell.arch} cannot be built with {cell.arch_overrides}: '
                       f'{one_line(e, 200)}') from None
  return arch, config, task, model_lib.build_model(arch, config, spec, dtype=cell.precision)


def measure_cell(cell: Cell, out: dict[str, Any], on_step: OnStep | None = None,
                 execution: Execution = DEFAULT_EXECUTION,
                 checkpoint_dir: pathlib.Path | None = None) -> None:
  """Train, evaluate and time one cell, filling `out` ({'config', 'metrics', 'perf',
  'curves'}) as it goes, so that what was measured before a failure is kept. Raises on
  failure (run_cell turns that into a status).

  With `checkpoint_dir`, training resumes from the checkpoint there if there is one, and
  saves one as `execution` says; past `execution.time_limit_s` (checked between
  dispatches) the cell stops with CellTimeout.
  """
  started = time.monotonic()
  peak_before = _device_peak_in_use()
  arch, config, task, model = prepare(cell)
  spec, tc = task.spec, cell.train
  optimizer = train_lib.make_optimizer(tc)
  parallel = DataParallel.over(execution.devices, (tc.batch_size,))
  state = parallel.replicate(train_lib.init_state(model, task, optimizer,
                                                  stream_key(cell.seed, Stream.INIT),
                                                  tc.batch_size))
  params = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(state.params))
  backbone_params = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(
      state.params['params']['backbone']))
  task_spec = {'kind': spec.kind, 'length': spec.length, 'metric': spec.metric,
               'higher_is_better': spec.higher_is_better, 'solved': spec.solved}
  budget = archs.registry.budget(cell.size)
  out.update({'config': {'arch': config, 'task': task.params, 'task_spec': task_spec,
                         'train': tc, 'precision': cell.precision,
                         # Overrides of the backbone config move it off the size's budget.
                         'budget': {'size': cell.size, 'params': budget,
                                    'overridden_by': sorted(cell.arch_overrides)},
                         # The metrics are those of the weights after the last step (no
                         # early stopping, no best-checkpoint selection).
                         'eval_weights': 'final'},
              'metrics': {},
              'perf': {'params': params, 'backbone_params': backbone_params,
                       **parallel.describe(tc.batch_size)}})
  if 'length' in cell.probes:
    out['metrics']['lrd/length'] = spec.length
  if 'gradient' in cell.probes:  # before training: the curve at initialisation
    probe = lrd.GradientProbe(model, task, state.params,
                              stream_key(cell.seed, Stream.PROBE),
                              fast_compile=cell.fast_compile)
    out['metrics'].update(probe.measure(state.params, 'init'))
    out['perf']['probe_compile_s'] = probe.compile_s

  # Compile ahead of time, apart from any timing: dispatches of k steps, and one of the
  # remainder when k does not divide the steps (so a cell trains exactly the steps asked,
  # the steps its learning-rate schedule decays over). Dispatch i draws its batches from
  # fold_in(train_key, i): the batches depend on the seed and the step alone, which is
  # what lets a checkpointed cell resume bit for bit.
  k = max(1, min(tc.steps_per_dispatch, tc.steps))
  num_chunks, remainder = divmod(tc.steps, k)
  dispatches = [k] * num_chunks + ([remainder] if remainder else [])
  train_key = data.spec.train_key(cell.seed)

  def compile_chunk(num_steps):
    chunk = functools.partial(train_lib.train_chunk, model=model, task=task,
                              optimizer=optimizer, batch_size=tc.batch_size,
                              num_steps=num_steps, parallel=parallel)
    return timing.compile_ahead(chunk, state, train_key, fast=cell.fast_compile)

  compiled = {}
  compiled[k], compile_s = compile_chunk(k)
  out['perf'].update(compile_s=compile_s, **_memory(compiled[k]))
  if remainder:
    compiled[remainder], rest_compile_s = compile_chunk(remainder)
    out['perf']['compile_s'] += rest_compile_s

  checkpoints = None
  first = 0
  if checkpoint_dir is not None and jax.process_count() == 1:
    # Several hosts resume at cell granularity: a checkpoint would need every process.
    checkpoints = CellCheckpoints(checkpoint_dir, every_steps=execution.checkpoint_every_steps,
                                  every_s=execution.checkpoint_every_s)
    restored = checkpoints.restore(state)
    if restored is not None:
      state, first = restored
      state = parallel.replicate(state)
      out['perf']['resumed_at_step'] = int(state.step)

  # Train: every whole dispatch is a timing window; the first is the warm-up.
  chrono, losses = timing.Chrono(warmup_windows=1), []
  # The training curve: [step, mean loss of the dispatch ending there] per dispatch. A
  # resumed cell holds only the dispatches it ran itself, from its checkpoint's step on.
  curve = out.setdefault('curves', {}).setdefault('train/loss', [])
  untimed_s = 0.0

  def training_figures():
    step_s = chrono.median_s
    out['metrics'].update({'train/loss': losses[-1] if losses else None,
                           'train/steps': int(state.step)})
    out['perf'].update(train_s=sum(s for s, _ in chrono.windows) + untimed_s,
                       timed_windows=chrono.timed_windows)
    if step_s:
      out['perf'].update(
          step_ms=1e3 * step_s, step_ms_min=1e3 * chrono.spread_s[0],
          step_ms_max=1e3 * chrono.spread_s[1], examples_per_s=tc.batch_size / step_s,
          tokens_per_s=tc.batch_size * spec.tokens_per_example / step_s)
    return step_s

  for i in range(first, len(dispatches)):
    size = dispatches[i]
    start = time.perf_counter()
    if size == k:
      state, loss = chrono.time(compiled[k], state, jax.random.fold_in(train_key, i), steps=k)
    else:
      state, loss = jax.block_until_ready(
          compiled[size](state, jax.random.fold_in(train_key, i)))
      untimed_s += time.perf_counter() - start
    losses.append(float(loss))
    step = int(state.step)
    curve.append([step, losses[-1]])
    if not math.isfinite(losses[-1]):
      out['metrics']['train/loss'] = losses[-1]
      raise Diverged(f'training loss became {losses[-1]} at step {step}')
    if on_step is not None:
      on_step(step, tc.steps, losses[-1])
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
        checkpoints.save(state, step, i + 1)
  step_s = training_figures()

  # FLOPs: analytic always (forward x (1 + the arch's backward factor)); XLA's count only
  # where the model itself has no scan, since cost_analysis() counts a loop body once.
  flops = model_lib.train_flops(arch, config, spec) * tc.batch_size
  peak, peak_source = timing.device_peak_flops(cell.precision)
  xla = None if arch.uses_scan else _xla_flops_per_step(compiled[k])
  out['perf'].update(flops_per_step=flops, xla_flops_per_step=xla,
                     infer_flops_per_example=model_lib.forward_flops(arch, config, spec),
                     # MFU against the peak of every device the step ran on.
                     mfu=(flops / step_s / (peak * parallel.num_devices))
                     if peak and step_s else None, peak_flops=peak,
                     peak_flops_source=peak_source)

  if 'cost' in cell.probes:
    # A point of a cost sweep measures cost: the forward-only time too (on the batch a
    # dispatch after the last would draw), and no held-out evaluation, whose metrics mean
    # nothing after a cost cell's few steps and whose compilation would add as much again
    # to the cell's time for slow-compiling models (the LRU's: 10-20 s on a 2-core CPU).
    out['perf'].update(time_forward(model, task, state.params,
                                    jax.random.fold_in(train_key, len(dispatches)),
                                    tc.batch_size, fast=cell.fast_compile,
                                    parallel=parallel),
                       device_peak_bytes=cell_device_peak(peak_before, _device_peak_in_use()))
    return

  # Evaluate on the held-out set, one compiled scan over padded batches.
  metrics, eval_compile_s, eval_s = _evaluate(model, task, state.params, tc, parallel,
                                              cell.fast_compile)
  out['metrics'].update(metrics)
  if not all(math.isfinite(v) for v in metrics.values()):
    raise Diverged(f'evaluation gave non-finite metrics: {metrics}')
  out['metrics'].update({f'baseline/{k}': v for k, v in spec.baselines.items()})
  out['metrics']['solved'] = spec.is_solved(metrics[spec.metric])
  out['perf'].update(eval_compile_s=eval_compile_s,
                     eval_examples_per_s=task.eval_size / eval_s,
                     device_peak_bytes=cell_device_peak(peak_before, _device_peak_in_use()))
  if 'gradient' in cell.probes:
    out['metrics'].update(probe.measure(state.params, 'trained'))
  if cell.eval_lengths:
    out['metrics'].update(evaluate_at_lengths(cell, model, state.params, parallel))

  # Text generation: sample continuations of held-out prompts, scored by the task.
  if task.score_samples is not None:
    scores, sample_compile_s = generate.sample_and_score(
        state.params, task, stream_key(cell.seed, Stream.SAMPLE), model=model,
        num_samples=min(task.eval_size, tc.eval_batch_size), fast=cell.fast_compile)
    out['metrics'].update(scores)
    out['perf']['sample_compile_s'] = sample_compile_s


def _evaluate(model, task, params, tc, parallel, fast: bool):
  """(metrics 'eval/...', compile seconds, run seconds) of `params` on `task`'s held-out
  set: one compiled scan over its padded batches."""
  batches, weights = parallel.put_batches(train_lib.pad_eval_set(
      task.eval_data, tc.eval_batch_size, multiple=parallel.num_devices))
  evaluate = functools.partial(train_lib.evaluate, model=model, spec=task.spec)
  compiled, compile_s = timing.compile_ahead(evaluate, params, batches, weights, fast=fast)
  chrono = timing.Chrono(warmup_windows=0)
  sums = chrono.time(compiled, params, batches, weights)
  return train_lib.finalize(task.spec, jax.device_get(sums), 'eval'), compile_s, chrono.median_s


def evaluate_at_lengths(cell: Cell, model, params, parallel) -> dict[str, float]:
  """Length generalisation: the trained model on held-out sets of every length in
  `cell.eval_lengths` (data.at_length: each set holds that length only), as metrics
  'length/<L>/<metric>', and their mean over the lengths beyond training as
  'ood/<metric>' (out of distribution: L > the task's training `length`).

  The same parameters serve every length: recurrences, convolutions and sinusoidal
  positions take any length; a learned position table (sized at initialisation) cannot,
  and the cell then fails with that error."""
  entry = data.get(cell.task)
  metrics, beyond = {}, {}
  for length in cell.eval_lengths:
    task = entry.build(cell.seed, **data.at_length(cell.task_params, length))
    values, _, _ = _evaluate(model, task, params, cell.train, parallel, cell.fast_compile)
    if not all(math.isfinite(v) for v in values.values()):
      raise Diverged(f'evaluation at length {length} gave non-finite metrics: {values}')
    for key, value in values.items():
      name = key.split('/', 1)[1]
      metrics[f'length/{length}/{name}'] = value
      if length > cell.task_params['length']:
        beyond.setdefault(name, []).append(value)
  metrics.update({f'ood/{name}': float(np.mean(v)) for name, v in beyond.items()})
  return metrics


def _record(cell: Cell, suite: str, run_id: str, env: dict[str, Any],
            error: BaseException | None = None) -> dict[str, Any]:
  """A cell's record before its measurements: identity, requested config, status. The
  cell itself (`config.cell`) is enough to run it again (`archbench run --from_record`)."""
  return {'schema': records.SCHEMA, 'run_id': run_id, 'cell_id': cell.digest,
          'suite': suite, 'arch': cell.arch, 'task': cell.task, 'size': cell.size,
          'seed': cell.seed,
          'config': {'cell': cell.to_dict(), 'task': cell.task_params,
                     'arch_overrides': cell.arch_overrides, 'train': cell.train,
                     'fast_compile': cell.fast_compile, 'probes': list(cell.probes)},
          'status': 'ok' if error is None else _status_of(error),
          'error': None if error is None else _error_text(error),
          'metrics': {}, 'perf': {}, 'curves': {}, 'env': env}


def run_cell(cell: Cell, *, suite: str, run_id: str, env: dict[str, Any],
             on_step: OnStep | None = None, execution: Execution = DEFAULT_EXECUTION,
             checkpoint_dir: pathlib.Path | None = None) -> dict[str, Any]:
  """Measure one cell and return its record; never raises."""
  record = _record(cell, suite, run_id, env)
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


def _run_cell_in_worker(cell: Cell, on_step: OnStep | None = None, *, suite: str,
                        run_id: str, env: dict[str, Any], execution: Execution,
                        checkpoints: pathlib.Path) -> dict[str, Any]:
  """run_cell as every executor calls it, in this process or another (module level, so
  that it pickles); the cell checkpoints under checkpoints/<cell_id>/."""
  return run_cell(cell, suite=suite, run_id=run_id, env=env, on_step=on_step,
                  execution=execution, checkpoint_dir=checkpoints / cell.digest)


PLAN_FILE = 'run.json'  # what a run set out to do, so that --resume can finish it


def write_plan(out_dir: pathlib.Path, cells: list[Cell], *, suite: str, run_id: str,
               workers: int, execution: Execution,
               dispatch: dict[str, Any] | None = None) -> None:
  """`dispatch`: run_suite's executor arguments (executor, ray_*, and tensorboard), which
  --resume passes back to it, so that a resumed run dispatches its cells as the run began
  to."""
  plan = {'suite': suite, 'run_id': run_id, 'workers': workers,
          'execution': dataclasses.asdict(execution), 'dispatch': dispatch or {},
          'code_version': records.code_version(), 'command': ' '.join(sys.argv),
          'utc_time': records.utc_now(), 'cells': [c.to_dict() for c in cells]}
  data_cache.write_atomically(out_dir / PLAN_FILE, json.dumps(plan, indent=1).encode())


def read_plan(out_dir: pathlib.Path) -> dict[str, Any]:
  """The plan of the run in out_dir, with its cells as Cell objects."""
  try:
    plan = json.loads((out_dir / PLAN_FILE).read_text())
    plan['cells'] = [Cell.from_dict(c) for c in plan['cells']]
    plan['execution'] = Execution(**plan['execution'])
    return plan
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise UsageError(f'{out_dir} holds no readable {PLAN_FILE} (was it made by archbench '
                     f'run?): {type(e).__name__}: {e}') from None


def run_suite(cells: list[Cell], out_dir: pathlib.Path, *, suite: str,
              env: dict[str, Any] | None = None, workers: int = 1,
              progress: Progress | None = None, execution: Execution = DEFAULT_EXECUTION,
              run_id: str | None = None, resume: bool = False, executor: str = 'local',
              ray_address: str | None = None, ray_cpus_per_cell: float = 1.0,
              ray_gpus_per_cell: float | None = None,
              tensorboard: bool = False) -> list[dict[str, Any]]:
  """Run cells, appending each record to out_dir/results.jsonl as it finishes and
  refreshing the summaries, so a killed run keeps everything finished.

  Each cell in flight checkpoints under out_dir/checkpoints/<cell_id>/ (as `execution`
  says). `resume` continues a killed run: a torn last line is cut off, the cells already
  recorded (by cell_id) are skipped, and a cell with a checkpoint continues from it.

  `executor` says where cells run (executors.py): 'local' (here, one at a time),
  'processes' (a pool of `workers` processes, one GPU each on a GPU machine) or 'ray' (a
  Ray cluster: `ray_address` joins one, None starts a local one; each cell's task asks for
  `ray_cpus_per_cell` CPUs and `ray_gpus_per_cell` GPUs). `workers` > 1 with 'local'
  means 'processes'. XLA compiles on one thread, so several workers speed up compile-bound
  suites (smoke) on a multi-core CPU; the cells then share the machine, so their timings
  are not comparable, and timing suites keep one worker. The record's env says how many
  workers ran and its `ran_on` where its cell ran. Workers load this process's plug-ins.
  Whatever the executor, this process alone writes the records. `tensorboard`: it also
  writes each cell's training curve as TensorBoard event files (tensorboard_events.py).
  """
  chosen = executors.Executor.resolve(executor, workers)  # refused before anything runs
  executors.start_driver_backend(chosen)
  if tensorboard:
    tensorboard_events.require()
  dispatch = {'executor': executor, 'ray_address': ray_address,
              'ray_cpus_per_cell': ray_cpus_per_cell, 'ray_gpus_per_cell': ray_gpus_per_cell,
              'tensorboard': tensorboard}
  out_dir.mkdir(parents=True, exist_ok=True)
  path = out_dir / 'results.jsonl'
  writer = is_writer()  # on several hosts, process 0 alone writes
  if writer:
    records.repair(path)  # appending after a torn line would glue two records together
  run_id = run_id or f'{suite}-{records.utc_now()}-{uuid.uuid4().hex[:6]}'
  if not resume and writer:
    write_plan(out_dir, cells, suite=suite, run_id=run_id, workers=workers,
               execution=execution, dispatch=dispatch)
  recorded = ({r.get('cell_id') for r in records.load_records(path)}
              if resume and path.is_file() else set())
  todo = [(i, cell) for i, cell in enumerate(cells) if cell.digest not in recorded]
  env = dict(env or records.environment(), workers=workers, plugins=plugins.loaded())
  progress = progress or Progress(len(todo))
  checkpoints = out_dir / 'checkpoints'
  run = functools.partial(_run_cell_in_worker, suite=suite, run_id=run_id, env=env,
                          execution=execution, checkpoints=checkpoints)
  done: list[dict[str, Any]] = []

  def started(i, cell):  # the local executor's cells report progress step by step
    progress.cell_started(i, cell)
    return functools.partial(progress.step, cell)

  def finish(i, cell, outcome):
    # A worker or task that died returned no record: its cell's record says why.
    record = outcome if isinstance(outcome, dict) else _record(cell, suite, run_id, env,
                                                               outcome)
    record['ran_on'] = {'executor': chosen.value, **record.get('ran_on', {})}
    record['config']['cell_index'] = i  # the suite's order, whatever order cells finish in
    if writer:
      records.append_record(path, record)
      if tensorboard:
        tensorboard_events.write_cell(out_dir, record)
      shutil.rmtree(checkpoints / cell.digest, ignore_errors=True)  # recorded: done with it
      report.write_summaries(out_dir)
    done.append(record)
    progress.cell_finished(cell, report.one_line(record))

  ray = executors.RayOptions(ray_address, ray_cpus_per_cell, ray_gpus_per_cell)
  try:
    with contextlib.closing(executors.dispatch(chosen, todo, run, workers=workers,
                                               started=started, ray=ray)) as outcomes:
      for i, cell, outcome in outcomes:
        finish(i, cell, outcome)
  finally:
    progress.close()
  if writer:
    report.write_summaries(out_dir, plots=True)
  return done
