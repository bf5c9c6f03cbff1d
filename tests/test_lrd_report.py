"""Long-range tables and plots from records alone, and the sweeps the suites declare."""
import math

import numpy as np
import pytest

from archbench.benchmarks.results import long_range
from archbench.benchmarks.results import report
from archbench.benchmarks import config as config_lib


def _record(arch, length, value, *, task='adding', seed=0, status='ok', curve=None):
  """A record as the runner writes it for a sweep point (MSE task: solved at <= 0.01)."""
  metrics = {'lrd/length': length, 'baseline/eval/mse': 0.167}
  if status == 'ok':
    metrics['eval/mse'] = value
  if curve is not None:
    for when in ('init', 'trained'):
      metrics[f'lrd/grad_{when}'] = list(curve)
      metrics.update({f'lrd/{k}_{when}': v for k, v in
                      {'rate': math.log(0.9), 'horizon': 65, 'far_near': 0.01}.items()})
  return {'run_id': 'r', 'suite': 'lrd-cpu', 'arch': arch, 'task': task, 'size': 'tiny',
          'seed': seed, 'status': status, 'error': None if status == 'ok' else 'boom',
          'config': {'task': {'length': length},
                     'task_spec': {'metric': 'eval/mse', 'higher_is_better': False,
                                   'solved': 0.01}},
          'metrics': metrics, 'perf': {}, 'env': {}}


def test_longest_solved_length():
  records = [
      # rnn: solved at 16 only.
      _record('rnn', 16, 0.001), _record('rnn', 32, 0.05), _record('rnn', 64, 0.16),
      # lstm: solved at 16 and 64 but not 32: the longest solved length is still 64.
      _record('lstm', 16, 0.001), _record('lstm', 32, 0.02), _record('lstm', 64, 0.005),
      # gru: 64 is solved on one seed and failed on the other: not solved there.
      _record('gru', 16, 0.001), _record('gru', 32, 0.001),
      _record('gru', 64, 0.001), _record('gru', 64, 0.0, seed=1, status='error'),
      # lru: the mean over seeds decides (0.004 and 0.02 -> 0.012 > 0.01).
      _record('lru', 16, 0.004), _record('lru', 16, 0.02, seed=1),
      # tcn: never solved.
      _record('tcn', 16, 0.2), _record('tcn', 64, 0.2),
  ]
  assert long_range.longest_solved(records) == {
      ('rnn', 'adding'): 16, ('lstm', 'adding'): 64, ('gru', 'adding'): 32,
      ('lru', 'adding'): None, ('tcn', 'adding'): None}
  table = long_range.longest_solved_table(records)
  rows = {line.split(' | ')[0].strip('| '): line.split(' | ')[1].strip(' |')
          for line in table.splitlines()[2:]}
  # ≥ marks a length that is the longest swept: the model may solve longer ones too.
  assert rows == {'rnn': '16', 'lstm': '≥64', 'gru': '32', 'lru': '—', 'tcn': '—'}


def test_summary_has_the_lrd_sections_only_for_probe_runs():
  curve = 0.9 ** np.arange(64)
  records = [_record('rnn', 16, 0.001), _record('rnn', 64, 0.1, curve=curve)]
  text = report.summary_markdown(records)
  assert 'longest solved length' in text and 'Accuracy versus length: adding' in text
  assert '### adding, L=64' in text and '-0.105' in text  # ln 0.9 to three decimals
  plain = [dict(r, metrics={'eval/mse': 0.1}) for r in records]
  assert 'Long-range' not in report.summary_markdown(plain)
  csv_text = report.summary_csv(records)
  assert 'lrd/rate_init' in csv_text and 'lrd/grad_init' not in csv_text  # curves: jsonl


def test_plots_are_written_for_every_probe(tmp_path):
  records = [_record(arch, n, 0.01 * n / 16, curve=(r ** np.arange(n)) if n == 64 else None)
             for arch, r in (('rnn', 0.8), ('transformer', 1.0)) for n in (16, 32, 64)]
  records.append(_record('rnn', 30, 0.5, task='copy'))
  written = report.write_plots(tmp_path, records)
  assert sorted(p.name for p in written) == [  # the profile: over the lengths both ran
      'gradient_adding_L64.png', 'length_adding.png', 'length_copy.png',
      'performance_profile.png']
  for path in written:
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert path.stat().st_size > (5_000 if path.name == 'performance_profile.png' else 10_000)


@pytest.mark.parametrize('name', list(config_lib.suite_files()))
def test_suite_sweeps_probe_points_they_sweep(name):
  for task, plan in config_lib.load(name).tasks.items():
    if plan.sweep.param is None:
      assert not plan.sweep.gradient_probe_at, task
      continue
    values = plan.sweep.points
    assert set(plan.sweep.gradient_probe_at) <= set(values), task
    assert list(values) == sorted(set(values)), task  # increasing lengths


def test_lrd_cpu_cells():
  suite = config_lib.load('lrd-cpu')
  cells = config_lib.cells(suite)
  adding = [c for c in cells if c.task == 'adding']
  assert {c.arch for c in adding} == set(suite.archs)
  for arch in suite.archs:
    mine = [c for c in adding if c.arch == arch]
    assert [c.task_params['length'] for c in mine] == [16, 32, 64, 128]
    assert [('gradient' in c.probes) for c in mine] == [False, False, False, True]
    assert all('length' in c.probes for c in mine)
