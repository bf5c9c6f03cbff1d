"""`archbench compare`: cells matched across runs without their seed, and every verdict
judged against a stated tolerance (seed spread, timing-window spread, or a default)."""
import copy
import json
import math
import pathlib

import pytest

from archbench.benchmarks.core import Cell, UsageError
from archbench.benchmarks.results import compare as compare_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
SPECS = {  # task -> (headline metric, higher is better)
    'copy': ('eval/accuracy', True),
    'adding': ('eval/mse', False),
}


def _record(arch='lstm', task='copy', value=0.9, *, seed=0, status='ok', loss=0.5,
            step_ms=10.0, spread=0.02, cpu='AMD EPYC', length=10):
  """A schema-2 record as the runner writes it, with only what compare reads."""
  cell = Cell(arch=arch, task=task, size='small', seed=seed, task_params={'length': length})
  metric, higher = SPECS[task]
  ok = status == 'ok'
  return {
      'schema': 2, 'run_id': 'r', 'cell_id': cell.digest, 'suite': 'test', 'arch': arch,
      'task': task, 'size': 'small', 'seed': seed,
      'config': {'cell': cell.to_dict(), 'task': {'length': length},
                 'task_spec': {'metric': metric, 'higher_is_better': higher}},
      'status': status, 'error': None if ok else 'RuntimeError: boom',
      'metrics': {metric: value, 'eval/loss': loss} if ok else {},
      'perf': {'step_ms': step_ms, 'step_ms_min': step_ms * (1 - spread / 2),
               'step_ms_max': step_ms * (1 + spread / 2), 'timed_windows': 11} if ok else {},
      'env': {'cpu': cpu, 'device_kind': 'cpu', 'backend': 'cpu'},
  }


def _run():
  """Two cells, three seeds each, accuracies and MSEs spread over the seeds."""
  return ([_record('lstm', 'copy', v, seed=s) for s, v in enumerate((0.80, 0.85, 0.90))]
          + [_record('gru', 'adding', v, seed=s, loss=v)
             for s, v in enumerate((0.010, 0.012, 0.014))])


def _rows(comparison, metric=None, cell=None):
  return [r for r in comparison.rows
          if (metric is None or r.metric == metric) and (cell is None or r.cell.startswith(cell))]


def test_a_run_against_itself_is_all_same():
  run = _run()
  result = compare_lib.compare(run, copy.deepcopy(run))
  assert {r.verdict for r in result.rows} == {'same'}
  assert {r.metric for r in result.rows} == {'eval/accuracy', 'eval/mse', 'eval/loss',
                                             'perf/step_ms'}
  assert len(result.rows) == 6  # two cells: headline, loss, step time each
  assert all(r.n_base == r.n_new == 3 for r in result.rows)
  assert result.exit_code == 0 and not result.regressions
  assert not result.only_in_base and not result.only_in_new and not result.warnings
  assert 'No regressions.' in compare_lib.to_markdown(result)


def test_training_curves_are_not_compared():
  """A record's curves (schema 4) change with how its cell ran (a resumed cell keeps only
  the dispatches after its checkpoint): compare judges metrics and step times only."""
  base, new = _run(), _run()
  for i, r in enumerate(new):
    r['curves'] = {'train/loss': [[1, 10.0 * i], [2, None]]}
  result = compare_lib.compare(base, new)
  assert {r.verdict for r in result.rows} == {'same'}
  assert 'train/loss' not in {r.metric for r in result.rows}


def test_a_change_far_beyond_tolerance_is_a_regression():
  base = _run()
  new = copy.deepcopy(base)
  for r in new:
    if r['arch'] == 'lstm':
      r['metrics']['eval/accuracy'] -= 0.3
  result = compare_lib.compare(base, new)
  assert result.exit_code == 1
  [row] = result.regressions
  assert (row.cell, row.metric) == ('lstm/copy[length=10]/small', 'eval/accuracy')
  assert row.diff == pytest.approx(-0.3) and row.tolerance_source == '3σ of 3+3 seeds'
  text = compare_lib.to_markdown(result)
  assert 'Regressions: lstm/copy[length=10]/small (eval/accuracy).' in text
  assert '## copy: accuracy ↑' in text and '## adding: MSE ↓' in text
  assert '0.850 ± 0.050' in text  # mean ± std over the three seeds
  json.dumps(compare_lib.to_json(result))
  assert compare_lib.to_json(result)['regressions'] == [
      {'cell': 'lstm/copy[length=10]/small', 'metric': 'eval/accuracy'}]


def test_a_change_inside_the_seed_spread_is_within_noise():
  base = [_record(value=v, seed=s) for s, v in enumerate((0.80, 0.85, 0.90))]
  new = [_record(value=v, seed=s) for s, v in enumerate((0.77, 0.82, 0.87))]  # -0.03
  [row] = _rows(compare_lib.compare(base, new), 'eval/accuracy')
  # 3 * sqrt(0.05^2/3 + 0.05^2/3) = 0.122
  assert row.tolerance == pytest.approx(3 * (2 * 0.05 ** 2 / 3) ** 0.5)
  assert row.tolerance_source == '3σ of 3+3 seeds'
  assert row.verdict == 'within noise' and row.base_std == pytest.approx(0.05)
  # Seeds identical within each side: no spread, so the floor sets the tolerance.
  flat = [_record(value=0.9, seed=s) for s in range(3)]
  [row] = _rows(compare_lib.compare(flat, [_record(value=0.85, seed=s) for s in range(3)]),
                'eval/accuracy')
  assert row.tolerance == compare_lib.MIN_CHANGE_ABS and row.verdict == 'worse'


def test_one_seed_uses_the_default_tolerance_and_warns():
  result = compare_lib.compare([_record(value=0.90)], [_record(value=0.89)])
  [row] = _rows(result, 'eval/accuracy')
  assert row.tolerance == 0.02 and row.tolerance_source == 'default ±0.02, one seed'
  assert row.verdict == 'within noise'
  [loss] = _rows(result, 'eval/loss')
  assert loss.log_scale and loss.tolerance == pytest.approx(math.log(1.25))
  assert loss.tolerance_source == 'default ×/÷1.25, one seed'
  assert any('one seed cannot separate noise from change' in w for w in result.warnings)
  assert 'one seed cannot separate' in compare_lib.to_markdown(result)


def test_lower_is_better_metrics():
  base = [_record('gru', 'adding', 0.010, loss=0.010)]
  down = compare_lib.compare(base, [_record('gru', 'adding', 0.005, loss=0.005)])
  assert {r.metric: r.verdict for r in _rows(down)} == {
      'eval/mse': 'better', 'eval/loss': 'not judged', 'perf/step_ms': 'same'}  # one seed
  assert down.exit_code == 0
  up = compare_lib.compare(base, [_record('gru', 'adding', 0.020, loss=0.010)])
  assert [r.metric for r in up.regressions] == ['eval/mse']


def test_timing_on_the_same_machine():
  base = [_record(step_ms=10.0, spread=0.02)]
  [row] = _rows(compare_lib.compare(base, [_record(step_ms=12.0, spread=0.02)]),
                'perf/step_ms')
  assert row.ratio == pytest.approx(1.2) and row.verdict == 'worse'
  assert row.tolerance == pytest.approx(1.0)  # the 10% floor over a 2% window spread
  [row] = _rows(compare_lib.compare(base, [_record(step_ms=10.8, spread=0.02)]),
                'perf/step_ms')
  assert row.verdict == 'within noise'
  # With noisy windows (30% spread) 20% slower is within noise.
  noisy = compare_lib.compare([_record(step_ms=10.0, spread=0.3)],
                              [_record(step_ms=12.0, spread=0.3)])
  [row] = _rows(noisy, 'perf/step_ms')
  assert row.verdict == 'within noise' and row.tolerance_source == 'window spread 30%'
  faster = compare_lib.compare(base, [_record(step_ms=8.0)])
  assert _rows(faster, 'perf/step_ms')[0].verdict == 'better'
  assert '## Step time (ms) ↓' in compare_lib.to_markdown(faster)
  assert '0.80×' in compare_lib.to_markdown(faster)


def test_timing_from_different_machines_is_not_comparable():
  result = compare_lib.compare([_record(step_ms=10.0)], [_record(step_ms=20.0, cpu='Intel Xeon')])
  [row] = _rows(result, 'perf/step_ms')
  assert row.verdict == 'not comparable' and row.note == compare_lib.DIFFERENT_MACHINES
  assert result.exit_code == 0
  assert any('different machines' in w for w in result.warnings)


def test_timing_false_leaves_step_time_out():
  result = compare_lib.compare([_record(step_ms=10.0)], [_record(step_ms=30.0)], timing=False)
  assert {r.metric for r in result.rows} == {'eval/accuracy', 'eval/loss'}
  assert 'Step time' not in compare_lib.to_markdown(result)


def test_a_cell_failing_on_one_side():
  base, new = _run(), _run()
  new[0] = _record('lstm', 'copy', seed=0, status='error')
  result = compare_lib.compare(base, new)
  [row] = result.regressions
  assert (row.cell, row.metric, row.verdict) == ('lstm/copy[length=10]/small', 'status', 'worse')
  assert 'new error×1, ok×2' in row.note and 'boom' in row.note
  # The other two seeds are still compared.
  assert _rows(result, 'eval/accuracy')[0].n_new == 2
  text = compare_lib.to_markdown(result)
  assert '## Failed cells' in text and 'Regressions: lstm/copy[length=10]/small (status)' in text
  # Fixed on the new side: better, not a regression.
  fixed = compare_lib.compare(new, base)
  assert [r.verdict for r in _rows(fixed, 'status')] == ['better'] and fixed.exit_code == 0
  # Failed on both sides alike: reported, not a regression.
  failed = [_record(status='error')]
  both = compare_lib.compare(failed, copy.deepcopy(failed))
  assert [r.verdict for r in both.rows] == ['same'] and both.exit_code == 0


def test_cells_on_one_side_are_listed():
  base = _run() + [_record('rnn', 'copy')]
  new = _run() + [_record('lru', 'copy'), _record('lstm', 'copy', length=20)]
  result = compare_lib.compare(base, new)
  assert result.only_in_base == ['rnn/copy[length=10]/small']
  assert result.only_in_new == ['lru/copy[length=10]/small', 'lstm/copy[length=20]/small']
  assert result.exit_code == 0
  text = compare_lib.to_markdown(result)
  assert 'Only in base (1): rnn/copy[length=10]/small' in text
  assert 'Only in new (2):' in text


def test_load_errors(tmp_path):
  with pytest.raises(UsageError, match='missing'):
    compare_lib.load(tmp_path / 'missing')
  with pytest.raises(UsageError, match=str(tmp_path)):
    compare_lib.load(tmp_path)  # a directory without results.jsonl
  (tmp_path / 'results.jsonl').write_text('not json\n{"torn": \n')
  with pytest.raises(UsageError, match='no readable'):
    compare_lib.load(tmp_path)
  (tmp_path / 'results.jsonl').write_text(json.dumps(_record()) + '\n{"torn": ')
  assert len(compare_lib.load(tmp_path)) == 1
  assert len(compare_lib.load(tmp_path / 'results.jsonl')) == 1


def test_the_committed_quick_run_against_itself():
  run = compare_lib.load(REPO / 'results' / 'quick-cpu')
  result = compare_lib.compare(run, compare_lib.load(REPO / 'results' / 'quick-cpu'))
  assert result.rows and {r.verdict for r in result.rows} == {'same'}
  assert result.exit_code == 0 and not result.only_in_base and not result.only_in_new
  # Seeds of a cell form one group: 75 records, 25 cells of 3 seeds.
  assert len(run) == 75 and len({r.cell for r in result.rows}) == 25
  json.dumps(compare_lib.to_json(result))
  assert compare_lib.to_markdown(result).count('## ') == 8  # 6 tasks, loss, step time


def test_losses_compare_on_a_log_ratio_without_an_absolute_floor():
  """A headline MSE of 1e-4 that doubles is worse (the old floor of 0.001 hid it); one that
  moves by 20% is within the band of a factor 1.25."""
  base = [_record('gru', 'adding', 1e-4, loss=1e-4)]
  [row] = _rows(compare_lib.compare(base, [_record('gru', 'adding', 2e-4, loss=2e-4)],
                                    timing=False), 'eval/mse')
  assert row.verdict == 'worse' and row.log_scale
  [row] = _rows(compare_lib.compare(base, [_record('gru', 'adding', 1.2e-4, loss=1.2e-4)],
                                    timing=False), 'eval/mse')
  assert row.verdict == 'within noise'
  assert '×/÷1.25 (default ×/÷1.25, one seed)' in compare_lib.to_markdown(
      compare_lib.compare(base, [_record('gru', 'adding', 1.2e-4)], timing=False))


def test_a_secondary_loss_on_one_seed_is_not_judged():
  """The issue's case: the held-out loss of a translate cell moved from 0.00087 to 0.0019 on
  another machine while its exact match stayed 0.999: one seed cannot call that a change."""
  result = compare_lib.compare([_record(value=0.999, loss=0.00087)],
                               [_record(value=0.999, loss=0.0019)], timing=False)
  [row] = _rows(result, 'eval/loss')
  assert row.verdict == 'not judged' and row.note == compare_lib.NOT_JUDGED_NOTE
  assert result.exit_code == 0 and 'No regressions.' in compare_lib.to_markdown(result)
  # The headline metric itself is still judged on one seed.
  worse = compare_lib.compare([_record(value=0.999, loss=0.00087)],
                              [_record(value=0.90, loss=0.0019)], timing=False)
  assert [r.metric for r in worse.regressions] == ['eval/accuracy'] and worse.exit_code == 1


def test_a_secondary_loss_is_judged_when_the_seeds_say_so():
  """Three tight seeds a side: the loss more than doubled, far beyond their spread."""
  base = [_record(value=0.999, loss=v, seed=s) for s, v in enumerate((0.0009, 0.001, 0.0011))]
  new = [_record(value=0.999, loss=v, seed=s) for s, v in enumerate((0.0024, 0.0025, 0.0026))]
  result = compare_lib.compare(base, new, timing=False)
  [row] = _rows(result, 'eval/loss')
  assert row.verdict == 'worse' and result.exit_code == 1
  # Seeds spread over a factor 3 each: the same shift is within their noise.
  wide = [_record(value=0.999, loss=v, seed=s) for s, v in enumerate((0.0005, 0.001, 0.0015))]
  wider = [_record(value=0.999, loss=v, seed=s) for s, v in enumerate((0.0008, 0.002, 0.004))]
  [row] = _rows(compare_lib.compare(wide, wider, timing=False), 'eval/loss')
  assert row.verdict == 'within noise' and '(of ln)' in row.tolerance_source


def _quick_run(seeds=(0,)):
  """The committed quick run; by default its seed 0 alone, a one-seed run (the one-seed
  rules are what these tests exercise; the committed run has three seeds per cell)."""
  return [r for r in compare_lib.load(REPO / 'results' / 'quick-cpu') if r['seed'] in seeds]


def test_the_committed_quick_run_with_float_noise_exits_0():
  """What `archbench reproduce results/quick-cpu` meets on another machine of the same
  kind: every headline within its band, the one-seed losses moved by up to 2.2x."""
  base, new = _quick_run(), _quick_run()
  for r in new:
    metrics = r['metrics']
    headline = compare_lib.metrics.headline_metric(r)
    if compare_lib.metrics.is_bounded(headline):
      metrics[headline] = max(0.0, metrics[headline] - 0.01)
    else:
      metrics[headline] *= 1.1
    if headline != 'eval/loss' and metrics.get('eval/loss'):
      metrics['eval/loss'] *= 2.2 if r['seed'] == 0 else 1.05
  result = compare_lib.compare(base, new, timing=False)
  assert result.exit_code == 0, compare_lib.to_markdown(result)
  assert 'not judged' in result.counts()


@pytest.mark.parametrize('change', ['accuracy', 'mse', 'failed'])
def test_a_deliberately_altered_quick_run_exits_1(change):
  base, new = _quick_run(), _quick_run()
  record = next(r for r in new if r['arch'] == ('lstm' if change != 'accuracy' else 'cnn')
                and r['task'] == ('adding' if change != 'accuracy' else 'digits'))
  if change == 'accuracy':
    record['metrics']['eval/accuracy'] -= 0.05
  elif change == 'mse':  # solved (0.00058) -> partial: above the solved 0.01
    record['metrics']['eval/mse'] = 0.05
  else:
    record['status'] = 'error'
  result = compare_lib.compare(base, new, timing=False)
  assert result.exit_code == 1 and len(result.regressions) == 1


def test_a_one_seed_mse_within_its_level_is_not_judged_but_seeds_judge_it():
  """A solved MSE that doubles on one seed is what another machine can do to one run
  (quick-cpu's transformer on adding: 0.000114 on an Intel Xeon, 0.000143 on an AMD EPYC):
  not judged; with three seeds a side whose spread is small, the same shift is worse."""
  base, new = _quick_run(), _quick_run()
  record = next(r for r in new if (r['arch'], r['task']) == ('lstm', 'adding'))
  record['metrics']['eval/mse'] *= 2.0
  result = compare_lib.compare(base, new, timing=False)
  [row] = [r for r in _rows(result, 'eval/mse') if r.cell.startswith('lstm/adding')]
  assert row.verdict == 'not judged' and 'both solved' in row.note
  assert result.exit_code == 0
  seeds = lambda scale: [_record(value=0.999, loss=0.0005 * scale * (1 + 0.01 * s), seed=s)
                         for s in range(3)]
  [row] = _rows(compare_lib.compare(seeds(1), seeds(2), timing=False), 'eval/loss')
  assert row.verdict == 'worse'


def test_seeds_on_one_side_stand_for_both():
  """A one-seed reference against three seeds (standard-cpu's rnn on copy: 0.456 against
  0.224 ± 0.175): the three seeds' spread is one run's noise, so the drop is within it;
  the same drop against seeds that agree is worse."""
  base = [_record(value=0.456)]
  noisy = [_record(value=v, seed=s) for s, v in enumerate((0.05, 0.4, 0.22))]
  [row] = _rows(compare_lib.compare(base, noisy, timing=False), 'eval/accuracy')
  assert row.verdict == 'within noise' and 'seeds of one side' in row.tolerance_source
  steady = [_record(value=v, seed=s) for s, v in enumerate((0.22, 0.23, 0.225))]
  [row] = _rows(compare_lib.compare(base, steady, timing=False), 'eval/accuracy')
  assert row.verdict == 'worse'


@pytest.mark.parametrize('base,new', [(0.02, 0.12), (1e-4, 0.0099)])
def test_one_seed_changes_within_partial_or_by_a_large_factor_are_judged(base, new):
  """Only a small move (x4 at most) within `solved` or `at chance` goes unjudged with one
  seed a side: an adding MSE from 0.02 to 0.12 (both partial, x6) or from 1e-4 to 0.0099
  (both solved, x99) is worse."""
  base_run, new_run = _quick_run(), _quick_run()
  for run, value in ((base_run, base), (new_run, new)):
    next(r for r in run if (r['arch'], r['task']) == ('lstm', 'adding'))['metrics'][
        'eval/mse'] = value
  result = compare_lib.compare(base_run, new_run, timing=False)
  [row] = [r for r in _rows(result, 'eval/mse') if r.cell.startswith('lstm/adding')]
  assert row.verdict == 'worse' and result.exit_code == 1
