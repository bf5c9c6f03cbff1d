"""Executors: the same cells give the same records in this process, in a pool of processes
and on a local Ray cluster; the driver alone writes them; a resumed run dispatches only
its unfinished cells whatever the executor; a worker that dies is an `error` record.

The Ray tests start a local cluster on this machine; they are skipped only where Ray is not
installed (`pip install -e '.[ray]'`; the `test` extra includes it)."""
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from archbench.benchmarks.core import Cell, TrainConfig, UsageError
from archbench.benchmarks.harness import executors, suite
from archbench.benchmarks.progress import Progress
from archbench.benchmarks.results import records

REPO = pathlib.Path(__file__).resolve().parent.parent
QUIET = dict(log=lambda *_: None)
TRAIN = TrainConfig(steps=4, batch_size=4, warmup_steps=1, steps_per_dispatch=2,
                    eval_batch_size=16)
# Three seeds of one architecture: one compiled program, so after the first cell the
# others load it from the session's compilation cache, in any process.
CELLS = [Cell('rnn', 'adding', 'tiny', seed=s, task_params={'length': 6, 'eval_size': 16},
              train=TRAIN, fast_compile=True) for s in range(3)]
# Not importing ray here: the executor has to import it itself to keep a local cluster on
# 127.0.0.1 (executors.RAY_SINGLE_MACHINE).
requires_ray = pytest.mark.skipif(importlib.util.find_spec('ray') is None,
                                  reason="Ray is not installed: pip install -e '.[ray]'")
# Both start processes (a pool, a Ray cluster): slow, as every subprocess run is.
EXECUTORS = [pytest.param('processes', marks=pytest.mark.slow),
             pytest.param('ray', marks=[requires_ray, pytest.mark.slow])]


@pytest.fixture(scope='module')
def local_run(tmp_path_factory):
  """The three cells run in this process: the reference for every other executor."""
  out = tmp_path_factory.mktemp('local')
  done = suite.run_suite(CELLS, out, suite='t', progress=Progress(3, **QUIET))
  return out, {r['cell_id']: r for r in done}


def test_local_records_say_where_they_ran(local_run):
  _, by_id = local_run
  for r in by_id.values():
    assert r['status'] == 'ok' and set(r) == set(records.RECORD_KEYS)
    assert r['ran_on']['executor'] == 'local' and r['ran_on']['pid'] == os.getpid()
    assert r['ran_on']['host'] and r['ran_on']['devices'] == ['cpu:0']


@pytest.mark.parametrize('executor', EXECUTORS)
def test_resume_dispatches_only_unfinished_cells(executor, local_run, tmp_path):
  """A local run that lost its last two records, resumed with another executor: those two
  cells (only) run again, two at once, in other processes, with the local run's metrics."""
  reference, by_id = local_run
  shutil.copytree(reference, tmp_path, dirs_exist_ok=True)
  path = tmp_path / 'results.jsonl'
  lines = path.read_text().splitlines()
  path.write_text(lines[0] + '\n')
  plan = suite.read_plan(tmp_path)
  assert plan['dispatch']['executor'] == 'local'
  rerun = suite.run_suite(plan['cells'], tmp_path, suite='t', run_id=plan['run_id'],
                           resume=True, workers=2, executor=executor,
                           progress=Progress(2, **QUIET))
  assert sorted(r['seed'] for r in rerun) == [1, 2]
  final = records.load_records(path)
  assert len(final) == 3 and final[0] == json.loads(lines[0])
  for r in rerun:
    assert r['status'] == 'ok', r['error']
    assert r['ran_on']['executor'] == executor and r['ran_on']['pid'] != os.getpid()
    assert r['ran_on']['devices'] == ['cpu:0']
    assert r['metrics'] == by_id[r['cell_id']]['metrics']  # exactly: the cells are deterministic
  assert {r['cell_id'] for r in final} == set(by_id)


def test_workers_above_one_mean_processes_and_unknown_executors_are_refused(monkeypatch):
  assert executors.Executor.resolve('local', 2) is executors.Executor.PROCESSES
  assert executors.Executor.resolve('local', 1) is executors.Executor.LOCAL
  with pytest.raises(UsageError, match='valid: local, processes, ray, slurm'):
    executors.Executor.resolve('kubernetes', 1)
  # Without Ray, asking for it is a one-line usage error before any cell runs.
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec',
                      lambda name, *a: None if name == 'ray' else real(name, *a))
  with pytest.raises(UsageError, match=r"pip install -e '\.\[ray\]'"):
    executors.Executor.resolve('ray', 1)


def test_each_worker_is_pinned_to_one_gpu_with_its_share_of_memory(monkeypatch):
  monkeypatch.delenv(executors.MEM_FRACTION, raising=False)
  monkeypatch.delenv(executors.PREALLOCATE, raising=False)
  four = executors.worker_environments(['0', '1'], 4)
  assert [e['CUDA_VISIBLE_DEVICES'] for e in four] == ['0', '1', '0', '1']
  assert {e[executors.MEM_FRACTION] for e in four} == {'0.375'}  # JAX's 0.75, halved
  assert executors.worker_environments(['0', '1'], 2) == [{'CUDA_VISIBLE_DEVICES': '0'},
                                                          {'CUDA_VISIBLE_DEVICES': '1'}]
  assert executors.worker_environments([], 2) == [{}, {}]  # CPU: nothing to split
  monkeypatch.setenv(executors.MEM_FRACTION, '0.9')
  assert executors.worker_environments(['3'], 3)[0][executors.MEM_FRACTION] == '0.3'
  # GPUs are counted without starting JAX: from CUDA_VISIBLE_DEVICES, or none at all
  # when JAX is told to use the CPU.
  monkeypatch.setenv('JAX_PLATFORMS', 'cuda')
  monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '2,5')
  assert executors.visible_gpus() == ['2', '5']
  monkeypatch.setenv('JAX_PLATFORMS', 'cpu')
  assert executors.visible_gpus() == []


def _die(cell, on_step=None, **_):
  """A worker killed in the middle of a cell (out of memory, a crash in XLA)."""
  os._exit(3)


@pytest.mark.parametrize('executor', EXECUTORS)
def test_a_worker_that_dies_is_an_error_record(executor, monkeypatch, tmp_path):
  """The driver goes on and records the cell as `error`, never crashes. (_die pickles by
  reference, so workers run it in place of the real cell function.)"""
  monkeypatch.setattr(suite, '_run_cell_in_worker', _die)
  if executor == 'ray':  # Ray's workers do not have tests/ on their path
    os.environ.setdefault(*executors.RAY_SINGLE_MACHINE)  # before ray is first imported
    import ray.cloudpickle
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
  done = suite.run_suite(CELLS[:1], tmp_path, suite='t', executor=executor,
                          progress=Progress(1, **QUIET))
  assert [r['status'] for r in done] == ['error'] and done[0]['error']
  on_disk = records.load_records(tmp_path / 'results.jsonl')
  assert on_disk[0]['ran_on'] == {'executor': executor}


@requires_ray
@pytest.mark.slow
def test_smoke_through_ray_equals_local(tmp_path):
  """`archbench run --suite smoke --config.executor=ray` (four of its cells: two families
  on two task kinds) against the same run without Ray: every cell ok, on Ray, with the
  other run's metrics."""
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '2'}
  runs = {}
  for executor in ('local', 'ray'):
    out = tmp_path / executor
    proc = subprocess.run(
        [sys.executable, '-m', 'archbench.benchmarks', 'run', '--suite', 'smoke', '--archs',
         'gru,transformer', '--tasks', 'adding,copy', f'--config.executor={executor}',
         '--out', str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs[executor] = {r['cell_id']: r for r in records.load_records(out / 'results.jsonl')}
  assert len(runs['ray']) == 4 and runs['ray'].keys() == runs['local'].keys()
  for cell_id, r in runs['ray'].items():
    assert r['status'] == 'ok' and r['ran_on']['executor'] == 'ray'
    assert r['metrics'] == runs['local'][cell_id]['metrics'], (r['arch'], r['task'])
