"""`archbench run` and `archbench env`: where a run writes, the cells it plans (a suite and its
filters, one recorded cell, or a killed run to resume) and running them. The flows' one
door to the harness's runner and to provenance: the other flows run cells through here."""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any

from absl import logging

from archbench.benchmarks import config as config_lib
from archbench.benchmarks import tuning
from archbench.benchmarks.core import Execution, UsageError
from archbench.benchmarks.harness import executors, runner, slurm, suite
from archbench.benchmarks.harness.provenance import code_version, environment
from archbench.benchmarks.progress import Progress
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import merge, trackers
from archbench.benchmarks.results.records import env_text


@dataclasses.dataclass
class Plan:
  """What suite.run_suite is given: the suite's name, its cells and how to run them."""
  name: str
  cells: list
  workers: int = 1
  execution: Execution = runner.DEFAULT_EXECUTION
  dispatch: dict[str, Any] = dataclasses.field(default_factory=dict)  # executor, ray_*, slurm, log
  run_id: str | None = None
  resume: bool = False
  reuse: list[str] = dataclasses.field(default_factory=list)  # runs to copy cells from


def out_dir(out: str | None, name: str) -> pathlib.Path:
  """`out`, made and checked before any cell runs; default ./results/runs/<name>-<UTC>/."""
  if out:
    path = pathlib.Path(out)
  else:
    stamp = records_lib.utc_now().replace(':', '').replace('-', '')
    path = pathlib.Path.cwd() / 'results' / 'runs' / f'{name}-{stamp}'
  if path.exists() and not path.is_dir():
    raise UsageError(f'--out {path} is a file; give a directory')
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise UsageError(f'--out {path}: cannot create it ({e.strerror})') from None
  if not os.access(path, os.W_OK):
    raise UsageError(f'--out {path}: not writable')
  return path


def check(cells) -> None:
  """Refuse a bad cell before minutes go to the good ones (a missing dataset fails its
  cells only, when they run)."""
  for cell in cells:
    runner.prepare(cell, build_task=False)


def plan_cells(config, name: str, cells, workers: int | None = None) -> Plan:
  """The plan of `cells` run the way suite `config` says (execution, executor, workers):
  everything refused here is refused before --out is made."""
  dispatch = config_lib.executor(config)  # settings first: no model is built to refuse them
  check(cells)
  log = config_lib.trackers(config)
  if log:
    dispatch['log'] = log
    trackers.require(trackers.Settings.of(log))  # an extra missing, W&B online unready
  workers = workers or config.workers
  if executors.Executor.resolve(dispatch['executor'], workers) is executors.Executor.SLURM:
    slurm.require(slurm.SlurmOptions.from_settings(dispatch['slurm']))  # no sbatch here
  return Plan(name, cells, workers, config_lib.execution(config), dispatch)


def plan_suite(config, archs=None, tasks=None, size=None, seed=None, workers=None,
               tuned: str | None = None, reuse=()) -> Plan:
  """A suite's cells narrowed by the filters (--archs, --tasks, --size, --seed); with
  `tuned`, each pair's settings selected by the tuning run in that directory (--tuned);
  with `reuse`, the cells those runs recorded by this code are copied, not run (--reuse)."""
  for run in reuse:  # readable before anything is built
    merge.load(run)
  cells = config_lib.cells(config, archs, tasks, size, None if seed is None else [seed])
  if tuned is not None:
    cells = tuning.apply_tuned(config, cells, tuned)
  return dataclasses.replace(plan_cells(config, config.name, cells, workers), reuse=list(reuse))


def plan_record(config, record: str, workers: int | None = None) -> Plan:
  """One recorded cell again, exactly: record is RESULTS_JSONL:N (the N-th record, from 1);
  `config` says how to run it (execution, executor)."""
  path, _, line = record.rpartition(':')
  if not path or not line.isdigit():
    raise UsageError(f'--from_record takes RESULTS_JSONL:N, got {record!r}')
  found = records_lib.load_records(pathlib.Path(path)) if pathlib.Path(path).is_file() else None
  if found is None:
    raise UsageError(f'--from_record: no file {path}')
  if not 1 <= int(line) <= len(found):
    raise UsageError(f'--from_record: {path} holds records 1..{len(found)}, not {line}')
  chosen = found[int(line) - 1]
  return plan_cells(config, chosen.get('suite', 'record'), [records_lib.cell_of(chosen)],
                    workers or 1)


def plan_resume(out: str, workers: int | None = None) -> Plan:
  """The killed run in `out`, as it was planned: recorded cells are skipped, the cell in
  flight continues from its checkpoint."""
  plan = suite.read_plan(pathlib.Path(out))
  if plan['code_version'] != code_version():
    raise UsageError(f'{out} was run by other code (version {plan["code_version"]}, this is '
                     f'{code_version()}): resuming would mix the two; start a new run and '
                     'compare them with archbench compare')
  return Plan(plan['suite'], plan['cells'], workers or plan['workers'], plan['execution'],
              plan.get('dispatch') or {}, plan['run_id'], resume=True)


def execute(plan: Plan, out: pathlib.Path) -> list[dict]:
  """Run the plan into `out` (records, summaries, plots); returns the records there."""
  logging.info('suite %s: %d cells -> %s', plan.name, len(plan.cells), out)
  suite.run_suite(plan.cells, out, suite=plan.name, workers=plan.workers,
                  progress=Progress.for_terminal(len(plan.cells)), execution=plan.execution,
                  run_id=plan.run_id, resume=plan.resume, reuse=plan.reuse, **plan.dispatch)
  return records_lib.load_records(out / 'results.jsonl')


def environment_text(as_json: bool) -> str:
  """What this machine would record as provenance, as JSON or one `key  value` a line."""
  env = environment()
  if as_json:
    return json.dumps(env, indent=1)
  width = max(map(len, env))
  return '\n'.join(f'{key:{width}s}  {env_text(value)}' for key, value in env.items())
