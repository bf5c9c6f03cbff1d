"""Cost versus sequence length: the exponent fit on synthetic costs of known shape, the
scaling suites' cells, and one tiny cost sweep through the runner (with a simulated
out-of-memory cell) whose records the fit and the report read."""
import json
import math

import jax
import numpy as np
import pytest

from archbench import archs
from archbench.benchmarks import config as config_lib
from archbench.benchmarks.core import Cell, TrainConfig, UsageError
from archbench.benchmarks.harness import runner, suite
from archbench.benchmarks.harness.evaluators import cost
from archbench.benchmarks.progress import Progress
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import report
from archbench.benchmarks.results import scaling

LENGTHS = 2 ** np.arange(6, 17)  # 64 .. 65536


# ---------------------------------------------------------------------------------------
# The fit on synthetic costs.

def test_attention_like_cost_gives_two_in_the_limit():
  """a T^2 + b T + floor: the T^2 term takes over at long T, so the exponent fitted over
  the longest lengths tends to 2 (within 0.05 once T^2 is ~100x the T term), while one
  fitted where the T term still weighs in reads lower."""
  def cost(t):
    return 1e-6 * t**2 + 1e-3 * t + 1.0
  long = 2 ** np.arange(14, 21)  # T^2 / T term from 16x to 1000x
  assert scaling.fit_exponent(long, cost(long)).exponent == pytest.approx(2.0, abs=0.05)
  whole = scaling.fit_exponent(LENGTHS, cost(LENGTHS))
  assert 1.3 < whole.exponent < 1.95  # an effective exponent between the two regimes


def test_recurrent_or_convolutional_cost_gives_one():
  """a T + floor (a scan or a convolution: constant work per step) fits to 1 within 0.05
  when the floor is about the work of the shortest length; a floor left in the fitted
  points biases the exponent low (a floor worth T=500 of work: 0.91 over T >= 1024)."""
  fit = scaling.fit_exponent(LENGTHS, 2e-3 * LENGTHS + 0.1)
  assert fit.exponent == pytest.approx(1.0, abs=0.05)
  assert fit.stderr < 0.05
  heavy_floor = scaling.fit_exponent(LENGTHS, 2e-3 * LENGTHS + 1.0)
  assert min(heavy_floor.lengths) == 1024 and 0.85 < heavy_floor.exponent < 0.95


def test_associative_scan_t_log_t_gives_about_one():
  """T log T (an associative scan) has local exponent 1 + 1/ln T, 1.09 to 1.24 over
  T = 64..65536: it fits above 1 and within 0.2 of it."""
  fit = scaling.fit_exponent(LENGTHS, 1e-3 * LENGTHS * np.log2(LENGTHS) + 1.0)
  assert 1.0 < fit.exponent < 1.2


def test_the_small_t_floor_is_excluded():
  """Points whose cost is under twice the smallest are the floor: they are left out of
  the fit, which then finds the slope of the rising part alone."""
  costs = np.maximum(50.0, 1e-3 * LENGTHS ** 1.5)  # flat at 50 until T ~ 1357
  fit = scaling.fit_exponent(LENGTHS, costs)
  # T=2048 costs 93, under twice the floor; from T=4096 (262) on the points count.
  assert fit.lengths == (4096, 8192, 16384, 32768, 65536)
  assert fit.exponent == pytest.approx(1.5, abs=0.01)
  # Fitted with the floor, the slope would be far off.
  assert np.polyfit(np.log(LENGTHS), np.log(costs), 1)[0] < 1.2
  # A cost that never leaves its floor has no exponent; nor do fewer than three points.
  assert scaling.fit_exponent(LENGTHS, np.full(len(LENGTHS), 3.0) + LENGTHS * 1e-9) is None
  assert scaling.fit_exponent([64, 128, 256], [1.0, 2.5, 5.0]) is None
  # Failed cells (no cost) are simply missing points.
  assert scaling.fit_exponent([64, 128, 256, 512], [1.0, 2.0, None, 8.0]) is None


def test_noisy_costs_give_a_standard_error_that_covers_the_true_exponent():
  """Lognormal noise (5%) on T^1.5 over 8 lengths: one fit is within 3 standard errors of
  1.5, and over 400 fits the 95% interval (t quantile on 5 degrees of freedom: 7 points
  past the floor) covers 1.5 in about 95% of them."""
  rng = np.random.default_rng(0)
  lengths = 2 ** np.arange(6, 14)
  t_975_dof5 = 2.571
  covered, fits = 0, 0
  for _ in range(400):
    costs = lengths ** 1.5 * np.exp(rng.normal(0, 0.05, len(lengths)))
    fit = scaling.fit_exponent(lengths, costs)
    assert len(fit.lengths) == 7 and fit.stderr > 0
    fits += 1
    covered += abs(fit.exponent - 1.5) <= t_975_dof5 * fit.stderr
    if fits == 1:
      assert abs(fit.exponent - 1.5) < 3 * fit.stderr
  assert 0.90 <= covered / fits <= 0.99


# ---------------------------------------------------------------------------------------
# Synthetic records through the report.

def _record(arch, length, batch, step_ms, *, status='ok'):
  """A cost-sweep record as the runner writes it (forward time a third of the step,
  memory proportional to the step time)."""
  perf = {} if status != 'ok' else {
      'step_ms': step_ms, 'infer_ms': step_ms / 3, 'peak_bytes': int(step_ms * 2**20),
      'tokens_per_s': batch * length / step_ms * 1e3}
  return {'run_id': 'r', 'suite': 'scaling', 'arch': arch, 'task': 'adding',
          'size': 'small', 'seed': 0, 'status': status,
          'error': None if status == 'ok' else 'RESOURCE_EXHAUSTED: out of memory',
          'config': {'task': {'length': length, 'eval_size': 8},
                     'task_spec': {'length': length, 'metric': 'eval/mse'},
                     'train': {'batch_size': batch}, 'probes': ['cost']},
          'metrics': {}, 'perf': perf, 'env': {}}


def _synthetic_run():
  lengths = [256, 512, 1024, 2048, 4096]
  records = []
  for batch in (2, 8):
    for t in lengths:
      records.append(_record('lstm', t, batch, batch * (0.01 * t + 1.0)))
      if t < 4096:  # attention runs out of memory at the longest length
        records.append(_record('transformer', t, batch, batch * (1e-5 * t**2 + 1.0)))
      else:
        records.append(_record('transformer', t, batch, None, status='oom'))
  return records


def test_report_writes_exponent_table_and_plot(tmp_path):
  records = _synthetic_run()
  series = scaling.series(records)
  assert set(series['adding']) == {('lstm', 2), ('lstm', 8), ('transformer', 2),
                                   ('transformer', 8)}
  table = scaling.exponent_table(records, 'adding')
  rows = {tuple(c.strip() for c in line.strip('|').split('|')[:2]):
          [c.strip() for c in line.strip('|').split('|')]
          for line in table.splitlines()[2:]}
  lstm, transformer = rows['lstm', '8'], rows['transformer', '8']
  exponent = lambda text: float(text.split(' ± ')[0])
  assert 0.85 < exponent(lstm[2]) < 1.0  # T/100 + 1: nearly linear
  assert 1.7 < exponent(transformer[2]) < 2.0 and transformer[-1] == 'T=4096'
  assert exponent(transformer[3]) == exponent(transformer[2])  # forward: a third of it
  assert lstm[-1] == '—' and lstm[-2] == '256–4096'
  text = report.summary_markdown(records)
  assert '## Cost versus sequence length: adding' in text
  assert '## Accuracy' not in text  # cost points are not evaluated
  assert '| transformer (batch 2) |' in text  # the perf table splits the batch sizes
  assert 'oom' in scaling.cost_table(records, 'adding', 'step_ms', 1.0)
  (tmp_path / 'results.jsonl').write_text(''.join(
      json.dumps(r) + '\n' for r in records))
  report.write_summaries(tmp_path, plots=True)
  png = (tmp_path / 'scaling_adding.png').read_bytes()
  assert png.startswith(b'\x89PNG') and len(png) > 10_000


def test_runs_without_a_cost_sweep_have_no_scaling_section():
  plain = [dict(r, config={**r['config'], 'probes': []}) for r in _synthetic_run()]
  assert scaling.series(plain) == {} and scaling.markdown(plain) == []
  assert '## Accuracy' in report.summary_markdown(plain)


# ---------------------------------------------------------------------------------------
# The suites' cells, resolved without running them.

def _sequence_archs():
  return {n for n in archs.names() if archs.get(n).input_kind == 'sequence'}


@pytest.mark.parametrize('name', ['scaling-cpu', 'scaling'])
def test_suite_cells_are_sequence_archs_by_lengths_by_batch_sizes(name):
  config = config_lib.load(name)
  plan = config.tasks.adding
  lengths, batch_sizes = tuple(plan.sweep.points), tuple(plan.batch_sizes)
  assert len(lengths) >= 4 and len(batch_sizes) >= 2
  pinned = {a: (t['batch_size'],) for a, t in plan.arch_train.items() if 'batch_size' in t}
  expected = {(a, t, b) for a in _sequence_archs() for t in lengths
              for b in pinned.get(a, batch_sizes)}
  cells = config_lib.cells(config)
  assert {(c.arch, c.task_params['length'], c.train.batch_size) for c in cells} == expected
  assert len(cells) == len(expected)
  assert {c.probes for c in cells} == {('cost',)} and {c.size for c in cells} == {'small'}
  assert max(c.train.steps for c in cells) <= 20  # a cost cell trains a few steps only


def test_cpu_suite_lengths_and_a_global_batch_size():
  """scaling-cpu: attention stops where a CPU step stays within seconds; the LRU (slow to
  compile) keeps one batch size, an architecture's own setting winning over the task's
  batch sizes; a global batch size pins them all."""
  config = config_lib.load('scaling-cpu')
  assert max(config.tasks.adding.sweep.points) <= 2048
  assert {c.train.batch_size for c in config_lib.cells(config, archs_filter=['lru'])} == {8}
  with config.unlocked():
    config.train.batch_size = 4  # a global override pins the batch-size sweep
  cells = config_lib.cells(config, archs_filter=['lstm'])
  assert [(c.task_params['length'], c.train.batch_size) for c in cells] == \
      [(t, 4) for t in config.tasks.adding.sweep.points]


def test_sweep_probe_is_checked():
  with pytest.raises(UsageError, match='sweep_probe'):
    config_lib.suite_config('x', 'x', 'tiny', {'adding': config_lib.task_plan(
        sweep=('length', (8, 16)), sweep_probe='speed')})
  with pytest.raises(UsageError, match='gradient probe'):
    config_lib.suite_config('x', 'x', 'tiny', {'adding': config_lib.task_plan(
        sweep=('length', (8, 16)), sweep_probe='cost', gradient_probe_at=(16,))})


# ---------------------------------------------------------------------------------------
# One tiny cost sweep through the runner.

@pytest.mark.slow
def test_tiny_cost_sweep_end_to_end_with_an_out_of_memory_cell(tmp_path, monkeypatch):
  """Two lengths run for real (rnn, size tiny, 2 steps); a third, between them, raises
  XLA's out-of-memory error, which the runner records as `oom` before going on. The
  records carry every cost the fit reads, and the report writes its table and plot."""
  train = TrainConfig(steps=2, batch_size=2, warmup_steps=0, steps_per_dispatch=1)
  cells = [Cell('rnn', 'adding', 'tiny', task_params={'length': t, 'eval_size': 2},
                train=train, fast_compile=True, probes=('cost',)) for t in (8, 64, 16)]
  real_measure = runner.measure_cell

  def measure_or_run_out_of_memory(cell, out, *args, **kwargs):
    if cell.task_params['length'] == 64:
      raise jax.errors.JaxRuntimeError(
          'RESOURCE_EXHAUSTED: Out of memory while trying to allocate 68719476736 bytes.')
    return real_measure(cell, out, *args, **kwargs)
  monkeypatch.setattr(runner, 'measure_cell', measure_or_run_out_of_memory)
  records = suite.run_suite(cells, tmp_path, suite='scaling-test', env={'backend': 'cpu'},
                             progress=Progress(len(cells), log=lambda *_: None))
  assert [r['status'] for r in records] == ['ok', 'oom', 'ok']  # the sweep went on
  assert 'RESOURCE_EXHAUSTED' in records[1]['error']
  for r in (records[0], records[2]):
    perf = r['perf']
    assert perf['step_ms'] > 0 and perf['infer_ms'] > 0 and perf['peak_bytes'] > 0
    assert perf['tokens_per_s'] > 0 and perf['infer_windows'] >= cost.FORWARD_MIN_WINDOWS
    assert 'eval/mse' not in r['metrics']  # a cost point is not evaluated
  on_disk = records_lib.load_records(tmp_path / 'results.jsonl')
  ((arch, batch), points), = scaling.series(on_disk)['adding'].items()
  assert (arch, batch) == ('rnn', 2) and sorted(points) == [8, 16, 64]
  for key, *_ in scaling.COSTS:
    lengths, costs = scaling.curve(points, key)
    assert lengths == [8, 16, 64] and costs[2] is None and all(costs[:2]), key
  assert scaling.first_out_of_memory(points) == 64
  assert (tmp_path / 'scaling_adding.png').is_file()
  summary = (tmp_path / 'summary.md').read_text()
  assert '## Cost versus sequence length: adding' in summary and '| T=64 |' in summary
  assert math.isfinite(on_disk[0]['perf']['infer_tokens_per_s'])
