"""Data parallelism within a cell (benchmarks/harness/parallel.py): N devices train the
same experiment as one, on one host (4 virtual CPU devices) and on two processes joined by
jax.distributed on localhost.

The test process itself has one CPU device (JAX fixes the count when it starts), so the
several-device runs happen in subprocesses started with XLA's host device count.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from archbench.benchmarks.core import Execution, UsageError
from archbench.benchmarks.harness.parallel import DataParallel, check_split

# A cell small enough to compile in seconds; batch 8 splits as 2 per device over 4.
CELL = """
from archbench.benchmarks.core import Cell, TrainConfig
def cell(arch):
  return Cell(arch, 'adding', 'tiny', 0, {'length': 16}, {},
              TrainConfig(steps=6, batch_size=8, steps_per_dispatch=3, eval_batch_size=50),
              True)
"""


def _python(script: str, env: dict[str, str], timeout: int = 600) -> list[dict]:
  """Run `script` in a fresh interpreter; it prints one JSON object per line."""
  done = subprocess.run([sys.executable, '-c', textwrap.dedent(script)], env={
      **os.environ, 'JAX_PLATFORMS': 'cpu', **env}, capture_output=True, text=True,
      timeout=timeout)
  assert done.returncode == 0, done.stderr[-3000:]
  return [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{')]


@pytest.mark.slow
def test_four_devices_train_the_same_cell_as_one():
  """A transformer and an LSTM cell on 4 virtual CPU devices: the same losses and held-out
  metrics as on 1 (float summation order aside), the batch split 2 per device, and the
  compiled step really is partitioned (it all-reduces the gradients)."""
  rows = _python(CELL + """
import functools, json
import jax
from archbench.benchmarks.core import Execution
from archbench.benchmarks.harness import runner, train as train_lib
from archbench.benchmarks.harness.parallel import DataParallel, check_split
from archbench.data.spec import Stream, stream_key
for arch in ('transformer', 'lstm'):
  for n in (1, 4):
    out = {}
    runner.measure_cell(cell(arch), out, execution=Execution(devices=n, checkpoint_every_s=None))
    print(json.dumps({'arch': arch, 'n': n, 'metrics': out['metrics'],
                      'perf': {k: out['perf'][k] for k in ('devices', 'per_device_batch', 'processes')}}))
# The partitioned program and where its state lives.
_, _, task, model = runner.prepare(cell('lstm'))
parallel = DataParallel.over(4, (8,))
optimizer = train_lib.make_optimizer(cell('lstm').train)
state = parallel.replicate(train_lib.init_state(model, task, optimizer, stream_key(0, Stream.INIT), 8))
chunk = functools.partial(train_lib.train_chunk, model=model, task=task, optimizer=optimizer,
                          batch_size=8, num_steps=2, parallel=parallel)
compiled = jax.jit(chunk).lower(state, jax.random.PRNGKey(0)).compile()
new_state, _ = compiled(state, jax.random.PRNGKey(0))
leaf = jax.tree_util.tree_leaves(new_state.params)[0]
print(json.dumps({'all_reduce': 'all-reduce' in compiled.as_text(),
                  'state_devices': len(leaf.sharding.device_set),
                  'replicated': leaf.sharding.is_fully_replicated}))
""", {'XLA_FLAGS': '--xla_force_host_platform_device_count=4'})
  by = {(r['arch'], r['n']): r for r in rows if 'arch' in r}
  for arch in ('transformer', 'lstm'):
    one, four = by[arch, 1], by[arch, 4]
    assert one['perf'] == {'devices': 1, 'per_device_batch': 8, 'processes': 1}
    assert four['perf'] == {'devices': 4, 'per_device_batch': 2, 'processes': 1}
    for key in ('train/loss', 'eval/loss', 'eval/mse'):
      assert four['metrics'][key] == pytest.approx(one['metrics'][key], rel=1e-5), (arch, key)
  placement = rows[-1]
  assert placement == {'all_reduce': True, 'state_devices': 4, 'replicated': True}


def test_placement_is_checked_before_anything_runs():
  with pytest.raises(UsageError, match=r'batch of 6 cannot be split evenly over 4'):
    check_split(4, (6,))
  with pytest.raises(UsageError, match=r'execution.devices=3, but this run has 1 device'):
    DataParallel.over(3)
  with pytest.raises(UsageError, match='execution.devices must be a whole number'):
    Execution(devices=-1)
  assert DataParallel.over(1, (7,)).mesh is None  # one device: nothing placed
  assert DataParallel.over(0).num_devices == 1  # 0 means all, here the one


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_localhost_train_as_one_device(tmp_path):
  """Multi-host on one machine: two processes (2 CPU devices each) joined by
  jax.distributed through the environment variables archbench reads, running one suite:
  the cell spans the 4 devices of both, gives the single-device metrics, and only
  process 0 writes results."""
  script = CELL + """
import json, os, pathlib
from archbench.benchmarks.harness import parallel
joined = parallel.initialize_distributed()
import jax
from archbench.benchmarks.core import Execution
from archbench.benchmarks.harness import suite
from archbench.benchmarks.progress import Progress
out = pathlib.Path(os.environ['OUT_DIR'])
records = suite.run_suite([cell('lstm')], out, suite='mh', progress=Progress(1, log=lambda _: None),
                           execution=Execution(devices=int(os.environ['DEVICES']),
                                               checkpoint_every_s=None))
print(json.dumps({'joined': joined, 'process': jax.process_index(),
                  'processes': jax.process_count(), 'record': records[0],
                  'wrote': (out / 'results.jsonl').is_file()}, default=str))
"""
  single = _python(script, {'OUT_DIR': str(tmp_path / 'single'), 'DEVICES': '1'})[0]
  port = _free_port()
  procs = []
  for i in range(2):
    env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'OUT_DIR': str(tmp_path / f'p{i}'),
           'DEVICES': '0', 'XLA_FLAGS': '--xla_force_host_platform_device_count=2',
           'JAX_COORDINATOR_ADDRESS': f'127.0.0.1:{port}', 'JAX_NUM_PROCESSES': '2',
           'JAX_PROCESS_ID': str(i)}
    procs.append(subprocess.Popen([sys.executable, '-c', textwrap.dedent(script)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  rows = [json.loads(next(l for l in out.splitlines() if l.startswith('{')))
          for out, _ in outputs]
  assert not single['joined'] and single['record']['perf']['devices'] == 1
  assert [r['process'] for r in rows] == [0, 1]
  assert all(r['joined'] and r['processes'] == 2 for r in rows)
  assert [r['wrote'] for r in rows] == [True, False]  # process 0 alone writes
  for r in rows:
    record = r['record']
    assert record['status'] == 'ok'
    assert record['perf']['devices'] == 4 and record['perf']['processes'] == 2
    assert record['perf']['per_device_batch'] == 2
    for key in ('train/loss', 'eval/mse'):
      assert record['metrics'][key] == pytest.approx(single['record']['metrics'][key],
                                                     rel=1e-5)
