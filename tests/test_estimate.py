"""The run-time estimate (benchmarks/flows/estimate.py, `archbench estimate`): measured rates interpolated in
log-log, FLOPs divided by them, and the stated GPU floors."""
from __future__ import annotations

import json

import pytest

from archbench import archs, data
from archbench.benchmarks import config as config_lib
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.flows import estimate


def _suite():
  return config_lib.suite_config(
      'est', 'a two-architecture suite', 'tiny', archs=('lstm', 'transformer'),
      train=dict(steps=100, batch_size=4),
      tasks={'adding': config_lib.task_plan(sweep=('length', (16, 64)))})


def _step_flops(arch_name, length):
  arch = archs.get(arch_name)
  spec = data.get('adding').spec(**{**data.get('adding').defaults, 'length': length})
  config = model_lib.resolve_config(arch, 'tiny', spec)
  return model_lib.train_flops(arch, config, spec) * 4


def test_rate_is_interpolated_in_log_log_and_clamped():
  points = [(10.0, 1e9), (1000.0, 1e11)]
  assert estimate.rate_at(points, 100.0) == pytest.approx(1e10)  # halfway in logs
  assert estimate.rate_at(points, 1.0) == pytest.approx(1e9)  # below: the first
  assert estimate.rate_at(points, 1e6) == pytest.approx(1e11)  # above: the last


def test_cpu_time_is_flops_over_the_measured_rate(tmp_path):
  # Rates measured at exactly the suite's work per step (batch 4 x length): 1e9 at 64
  # tokens, 4e9 at 256, for both architectures.
  lines = []
  for arch in ('lstm', 'transformer'):
    for tokens, rate in ((64, 1e9), (256, 4e9)):
      step_s = 0.01
      lines.append({'arch': arch, 'status': 'ok', 'perf': {
          'step_ms': step_s * 1e3, 'flops_per_step': rate * step_s,
          'tokens_per_s': tokens / step_s}})
  (tmp_path / 'results.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in lines))
  rates = estimate.measured_rates(tmp_path)
  gpu = estimate.GPU(mfu=1.0, step_floor_s=0.5, scan_position_s=0.0)
  rows = estimate.estimate(_suite(), rates, gpu)
  for arch in ('lstm', 'transformer'):
    short, long = _step_flops(arch, 16), _step_flops(arch, 64)
    assert rows[arch]['cells'] == 2
    assert rows[arch]['flops'] == pytest.approx(100 * (short + long))
    assert rows[arch]['cpu_s'] == pytest.approx(100 * (short / 1e9 + long / 4e9))
    # Tiny models on a GPU: the per-step floor, not the FLOPs, sets the time.
    assert rows[arch]['gpu_s'] == pytest.approx(2 * 100 * 0.5)
  text = estimate.to_markdown(rows, 'est', str(tmp_path), gpu)
  assert '| **all** | 4 |' in text


def test_a_flop_budget_is_estimated_at_the_steps_it_buys():
  """train.budget_flops: each cell trains what the budget buys, not its nominal steps."""
  budget = 50 * _step_flops('lstm', 64)
  suite = config_lib.suite_config(
      'est', 'equal FLOPs', 'tiny', archs=('lstm', 'transformer'),
      train=dict(steps=100, batch_size=4, budget_flops=budget),
      tasks={'adding': config_lib.task_plan({'length': 64})})
  rows = estimate.estimate(suite, {}, estimate.GPU())
  for arch in ('lstm', 'transformer'):
    step = _step_flops(arch, 64)
    assert rows[arch]['flops'] == pytest.approx(int(budget // step) * step)
    assert budget - step < rows[arch]['flops'] <= budget


def test_a_recurrence_pays_for_every_scanned_position():
  gpu = estimate.GPU(mfu=1.0, step_floor_s=0.0, scan_position_s=1e-3)
  rows = estimate.estimate(_suite(), {}, gpu)
  layers = model_lib.resolve_config(archs.get('lstm'), 'tiny', data.get('adding').spec(
      **data.get('adding').defaults)).num_layers
  assert rows['lstm']['gpu_s'] == pytest.approx(100 * (16 + 64) * layers * 1e-3, rel=1e-3)
  assert rows['lstm']['cpu_s'] is None  # no measured rate: no CPU estimate
  assert rows['transformer']['gpu_s'] < 1e-3  # no scan, and FLOPs at the full peak


def test_archbench_estimate_prints_the_suite_table(tmp_path, capsys):
  """`archbench estimate --config FILE --rates RUN`, in-process: the table of
  estimate.text, and one line with exit code 2 for a run without records."""
  from archbench.benchmarks import cli
  record = {'arch': 'lstm', 'status': 'ok', 'perf': {
      'step_ms': 10.0, 'flops_per_step': 1e7, 'tokens_per_s': 6400.0}}
  (tmp_path / 'results.jsonl').write_text(json.dumps(record) + '\n')
  (tmp_path / 'est.py').write_text(
      'from archbench.benchmarks.config import suite_config, task_plan\n'
      'def get_config():\n'
      '  return suite_config("est", "Two archs.", "tiny", {"adding": task_plan(\n'
      '      {"length": 16}, {"steps": 100, "batch_size": 4})}, archs=("lstm", "gru"))\n')
  argv = ['archbench', 'estimate', '--config', str(tmp_path / 'est.py'), '--rates',
          str(tmp_path)]
  assert cli.run(argv) == 0
  out = capsys.readouterr().out
  assert out == estimate.text(config_lib.load(str(tmp_path / 'est.py')), str(tmp_path)) + '\n'
  assert out.startswith('Estimate for suite `est`') and f'measured in `{tmp_path}`' in out
  rows = {line.split(' | ')[0]: line.split(' | ') for line in out.splitlines()
          if line.startswith('| ')}
  assert rows['| lstm'][3] != '–' and rows['| gru'][3] == '–'  # CPU time: measured rate only
  assert cli.run(['archbench', 'estimate', '--rates', str(tmp_path / 'none')]) == 2
  assert 'no results.jsonl' in capsys.readouterr().err
