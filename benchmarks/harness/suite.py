"""Running a suite: the plan (run.json) a run sets out with, resume, dispatch of the cells
through an executor (executors.py), one record appended per finished cell, and progress.
Each cell is measured by runner.run_cell, wherever it runs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import pathlib
import shutil
import sys
import uuid
from typing import Any

from archbench.benchmarks import plugins
from archbench.benchmarks.core import Cell, Execution, UsageError
from archbench.benchmarks.harness import executors, provenance
from archbench.benchmarks.harness import slurm as slurm_lib
from archbench.benchmarks.harness.parallel import is_writer
from archbench.benchmarks.harness.runner import DEFAULT_EXECUTION, OnStep, base_record, run_cell
from archbench.benchmarks.progress import Progress
from archbench.benchmarks.results import merge, records, report, trackers
from archbench.common import files


def _run_cell_in_worker(cell: Cell, on_step: OnStep | None = None, *, suite: str,
                        run_id: str, env: dict[str, Any], execution: Execution,
                        checkpoints: pathlib.Path) -> dict[str, Any]:
  """run_cell as every executor calls it, in this process or another (module level, so
  that it pickles); the cell checkpoints under checkpoints/<cell_id>/."""
  return run_cell(cell, suite=suite, run_id=run_id, env=env, on_step=on_step,
                  execution=execution, checkpoint_dir=checkpoints / cell.digest)


PLAN_FILE = 'run.json'  # what a run set out to do, so that --resume can finish it


def _source_key(source: str) -> str:
  """A plug-in source as one string however it was named: a file by its absolute path."""
  path = pathlib.Path(source)
  return str(path.resolve()) if path.is_file() else source


def reusable(runs, cells: list[Cell], out_dir: pathlib.Path) -> dict[int, dict[str, Any]]:
  """The records of `runs` (directories or results.jsonl files, --reuse) that stand for
  cells of `cells` by index: recorded ok, for the same cell_id, by the same code (the
  record's plug-ins are loaded in this run too, and its code version is what this code
  computes with them). Each is a copy whose ran_on says where it came from."""
  wanted = {cell.digest: i for i, cell in enumerate(cells)}
  loaded_now = {_source_key(source) for source in plugins.loaded()}
  versions: dict[tuple, str] = {}
  found: dict[int, dict[str, Any]] = {}
  for run in runs:
    source = merge.load(run)
    where = source.path if source.path.is_dir() else source.path.parent
    if where.resolve() == out_dir.resolve():
      raise UsageError(f'--reuse {run} is the run\'s own --out; continue a run with --resume')
    for record in source.records:
      i = wanted.get(record.get('cell_id'))
      if i is None or i in found or record['status'] != 'ok':
        continue
      env = record.get('env') or {}
      plugin_sources = tuple(env.get('plugins') or ())
      if not {_source_key(source) for source in plugin_sources} <= loaded_now:
        continue  # measured with a plug-in this run does not load: its cells may differ
      if plugin_sources not in versions:
        versions[plugin_sources] = provenance.code_version(list(plugin_sources))
      if env.get('code_version') == versions[plugin_sources]:
        found[i] = {**record, 'ran_on': {**(record.get('ran_on') or {}), 'reused_from': {
            'run': str(run), 'run_id': record.get('run_id')}}}
  return found


def write_plan(out_dir: pathlib.Path, cells: list[Cell], *, suite: str, run_id: str,
               workers: int, execution: Execution,
               dispatch: dict[str, Any] | None = None) -> None:
  """`dispatch`: run_suite's executor arguments (executor, ray_*, slurm, and log, its
  trackers), which --resume passes back to it, so that a resumed run dispatches its cells,
  and feeds its trackers, as the run began to (plans written before `log` say
  `tensorboard`)."""
  plan = {'suite': suite, 'run_id': run_id, 'workers': workers,
          'execution': dataclasses.asdict(execution), 'dispatch': dispatch or {},
          'code_version': provenance.code_version(), 'command': ' '.join(sys.argv),
          'utc_time': records.utc_now(), 'cells': [c.to_dict() for c in cells]}
  files.write_atomically(out_dir / PLAN_FILE, json.dumps(plan, indent=1))


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
              ray_gpus_per_cell: float | None = None, slurm: dict[str, Any] | None = None,
              log: dict[str, Any] | None = None, tensorboard: bool = False,
              reuse=()) -> list[dict[str, Any]]:
  """Run cells, appending each record to out_dir/results.jsonl as it finishes and
  refreshing the summaries, so a killed run keeps everything finished.

  Each cell in flight checkpoints under out_dir/checkpoints/<cell_id>/ (as `execution`
  says). `resume` continues a killed run: a torn last line is cut off, the cells already
  recorded (by cell_id) are skipped, and a cell with a checkpoint continues from it.

  `executor` says where cells run (executors.py): 'local' (here, one at a time),
  'processes' (a pool of `workers` processes, one GPU each on a GPU machine), 'ray' (a
  Ray cluster: `ray_address` joins one, None starts a local one; each cell's task asks for
  `ray_cpus_per_cell` CPUs and `ray_gpus_per_cell` GPUs) or 'slurm' (a job per cell, as
  the `slurm` settings say: slurm.SlurmOptions; `workers` at a time with slurm.local).
  `workers` > 1 with 'local' means 'processes'. XLA compiles on one thread, so several
  workers speed up compile-bound suites (smoke) on a multi-core CPU; the cells then share
  the machine, so their timings are not comparable, and timing suites keep one worker.
  The record's env says how many workers ran and its `ran_on` where its cell ran. Workers
  load this process's plug-ins. Whatever the executor, this process alone writes the
  records, and feeds each record, as written, to the experiment trackers `log` asks for
  (results/trackers.py's Settings: TensorBoard, W&B); a tracker that fails is one warning
  line, never a lost record. `tensorboard=True` is the older spelling of
  log['tensorboard'], which plans written before `log` existed carry.
  `reuse`: runs whose records of the same cells, by the same code, are copied instead of
  run (reusable()).
  """
  chosen = executors.Executor.resolve(executor, workers)  # refused before anything runs
  slurm_options = slurm_lib.SlurmOptions.from_settings(slurm)
  if slurm_options.folder:  # where this process runs now, also for a --resume from elsewhere
    slurm_options = dataclasses.replace(
        slurm_options, folder=str(pathlib.Path(slurm_options.folder).expanduser().resolve()))
  if chosen is executors.Executor.SLURM:
    slurm_lib.require(slurm_options)
  executors.start_driver_backend(chosen)
  tracking = trackers.Settings.of(log, tensorboard)
  trackers.require(tracking)
  dispatch = {'executor': executor, 'ray_address': ray_address,
              'ray_cpus_per_cell': ray_cpus_per_cell, 'ray_gpus_per_cell': ray_gpus_per_cell,
              **({'log': tracking.to_dict()} if tracking.any() else {})}
  if chosen is executors.Executor.SLURM:  # so that --resume submits its jobs the same way
    dispatch['slurm'] = slurm_options.to_dict()
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
  reused = {i: r for i, r in reusable(reuse, cells, out_dir).items()
            if cells[i].digest not in recorded}
  todo = [(i, cell) for i, cell in enumerate(cells)
          if cell.digest not in recorded and i not in reused]
  env = dict(env or provenance.environment(), workers=workers, plugins=plugins.loaded())
  progress = progress or Progress(len(todo))
  # Absolute: a Slurm job may start elsewhere than this process's working directory.
  checkpoints = out_dir.resolve() / 'checkpoints'
  if chosen is executors.Executor.SLURM:  # checkpoints often enough for the jobs' time limit
    execution = slurm_options.execution(execution)
  run = functools.partial(_run_cell_in_worker, suite=suite, run_id=run_id, env=env,
                          execution=execution, checkpoints=checkpoints)
  done: list[dict[str, Any]] = []

  def started(i, cell):  # the local executor's cells report progress step by step
    progress.cell_started(i, cell)
    return functools.partial(progress.step, cell)

  def write(i, cell, record):
    record['config']['cell_index'] = i  # the suite's order, whatever order cells finish in
    if writer:
      records.append_record(path, record)
      tracked.write_cell(records.to_jsonable(record))  # the record as results.jsonl has it
      shutil.rmtree(checkpoints / cell.digest, ignore_errors=True)  # recorded: done with it
    done.append(record)

  def finish(i, cell, outcome):
    # A worker or task that died returned no record: its cell's record says why.
    record = (outcome if isinstance(outcome, dict)
              else base_record(cell, suite, run_id, env, outcome))
    record['ran_on'] = {'executor': chosen.value, **record.get('ran_on', {})}
    write(i, cell, record)
    if writer:
      report.write_summaries(out_dir)
    progress.cell_finished(cell, report.progress_line(record))

  ray = executors.RayOptions(ray_address, ray_cpus_per_cell, ray_gpus_per_cell)
  run_info = {'run_id': run_id, 'suite': suite, 'cells': len(cells), 'to_run': len(todo),
              'reused': len(reused), 'resume': resume, 'executor': chosen.value,
              'workers': workers}
  # Closed however the run ends (W&B's service process with it); `finish` only when the
  # run completed, with its summaries and report final.
  with contextlib.closing(trackers.Trackers.open(tracking, out_dir, run_info) if writer
                          else trackers.Trackers([])) as tracked:
    for i, record in sorted(reused.items()):
      write(i, cells[i], record)
    try:
      with contextlib.closing(executors.dispatch(chosen, todo, run, workers=workers,
                                                 started=started, ray=ray,
                                                 slurm=slurm_options,
                                                 out_dir=out_dir)) as outcomes:
        for i, cell, outcome in outcomes:
          finish(i, cell, outcome)
    finally:
      progress.close()
    if writer:
      report.write_summaries(out_dir, plots=True)
      tracked.finish(out_dir)
  return done
