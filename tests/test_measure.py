"""Measurement: the accelerator peak table, MFU per device, a cell's own device peak, and
the CPU-peak cache under concurrent writers."""
import json
import threading
import types

import jax
import pytest

from archbench.benchmarks.core import Cell, TrainConfig
from archbench.benchmarks.harness import runner
from archbench.benchmarks.measure import timing
from archbench.common import files


@pytest.mark.parametrize('kind,key', [
    ('NVIDIA L4', 'L4'), ('NVIDIA L40S', 'L40S'), ('NVIDIA A10', 'A10'),
    ('NVIDIA A100-SXM4-80GB', 'A100'), ('NVIDIA H100 80GB HBM3', 'H100'),
    ('NVIDIA H200', 'H200'), ('TPU v5 lite', 'TPU v5 lite'), ('TPU v5p', 'TPU v5p'),
    ('TPU v4', 'TPU v4'), ('NVIDIA GeForce RTX 4090', None)])
def test_peak_table_matches_whole_names(kind, key):
  """'L4' must not match an L40S, nor 'A10' an A100."""
  found = timing.accelerator_peak(kind)
  assert (found[1] if found else None) == key


def test_peak_is_per_device_not_per_host(monkeypatch):
  """A cell runs on one device: on an 8-GPU host its MFU divides by one GPU's peak."""
  gpu = types.SimpleNamespace(platform='gpu', device_kind='NVIDIA H100 80GB HBM3')
  monkeypatch.setattr(jax, 'devices', lambda *a: [gpu] * 8)
  monkeypatch.setattr(jax, 'local_device_count', lambda *a: 8)
  monkeypatch.setattr(jax, 'device_count', lambda *a: 8)
  timing.device_peak_flops.cache_clear()
  try:
    peak, source = timing.device_peak_flops()
  finally:
    timing.device_peak_flops.cache_clear()
  assert peak == timing.ACCELERATOR_PEAK_FLOPS['H100']['float32']
  assert source == 'table:H100:float32'


def test_cell_device_peak_is_the_cells_own():
  assert runner.cell_device_peak(None, None) is None  # CPU: no device statistics
  assert runner.cell_device_peak(100, 150) == 150  # this cell raised the high-water mark
  assert runner.cell_device_peak(150, 150) is None  # an earlier cell's peak: unknown here


def test_later_smaller_cell_does_not_report_an_earlier_cells_peak(monkeypatch):
  """The device's high-water mark covers the process: a second, smaller cell must not be
  credited with the first one's peak."""
  marks = iter([0, 5_000_000, 5_000_000, 5_000_000])  # before/after cell 1, then cell 2
  monkeypatch.setattr(runner, '_device_peak_in_use', lambda: next(marks))
  train = TrainConfig(steps=2, batch_size=4, warmup_steps=1, steps_per_dispatch=2,
                      eval_batch_size=16)
  cell = Cell('rnn', 'adding', 'tiny', task_params={'length': 4, 'eval_size': 16},
              train=train, fast_compile=True)
  first = runner.run_cell(cell, suite='t', run_id='t', env={})
  second = runner.run_cell(cell, suite='t', run_id='t', env={})
  assert first['perf']['device_peak_bytes'] == 5_000_000
  assert second['perf']['device_peak_bytes'] is None


def test_json_cache_writes_are_atomic(tmp_path):
  """Readers never see a torn file while writers race (smoke runs two processes that may
  both measure the CPU peak)."""
  path = tmp_path / 'cpu_peak.json'
  files.write_atomically(path, b'{}')
  value = {f'machine-{i}': float(i) for i in range(3000)}
  errors, done = [], threading.Event()

  def write():
    for _ in range(150):
      files.write_atomically(path, json.dumps(value).encode())

  def read():
    while not done.is_set():
      try:
        json.loads(path.read_text())
      except ValueError as e:
        errors.append(e)

  writers = [threading.Thread(target=write) for _ in range(2)]
  reader = threading.Thread(target=read)
  reader.start()
  for w in writers:
    w.start()
  for w in writers:
    w.join()
  done.set()
  reader.join()
  assert not errors
  assert json.loads(path.read_text()) == value
  assert [p.name for p in tmp_path.iterdir()] == ['cpu_peak.json']  # no temporary left


_COMPILE_TWICE = '''
import sys, jax, jax.numpy as jnp
from archbench.benchmarks.measure import timing
hits = []
jax.monitoring.register_event_listener(
    lambda event, **kw: hits.append(event) if event.endswith('cache_hits') else None)
print(timing.use_compile_cache(sys.argv[1]))
compiled, _ = timing.compile_ahead(lambda x: jnp.tanh(x @ x.T).sum(), jnp.ones((8, 4)))
print(len(hits), float(compiled(jnp.ones((8, 4)))))
'''


@pytest.mark.slow
def test_persistent_compile_cache_serves_a_second_process(tmp_path):
  """A program compiled in one process is loaded, not compiled, by the next one; with the
  cache off nothing is written."""
  import subprocess
  import sys
  run = lambda cache: subprocess.run([sys.executable, '-c', _COMPILE_TWICE, cache],
                                     capture_output=True, text=True, check=True,
                                     timeout=300).stdout.split('\n')
  cache = tmp_path / 'cache'
  first, second = run(str(cache)), run(str(cache))
  assert first[0] == second[0] == str(cache)
  assert first[1].split()[0] == '0' and int(second[1].split()[0]) >= 1  # hits
  assert first[1].split()[1] == second[1].split()[1]  # the same program's result
  assert any(cache.iterdir())
  off = run('off')
  assert off[0] == 'None' and off[1].split()[0] == '0'
