"""What a metric key means (benchmarks/results/metrics.py), and that the report, the
comparison of runs and the reproductions all judge by it: a record's task_spec first, the
metric table for the rest, so a higher-is-better metric not named accuracy is judged the
right way up."""
import math

import pytest

from archbench.benchmarks.core import Cell
from archbench.benchmarks.results import compare, metrics, report
from archbench.benchmarks.results import reproduction as rep

SCORE = {'metric': 'eval/score', 'higher_is_better': True}  # a made-up headline metric
PERPLEXITY = {'metric': 'eval/perplexity', 'higher_is_better': False}


def test_key_builders_and_what_each_key_measures():
  assert metrics.eval_key('mse') == 'eval/mse'
  assert metrics.baseline_key('eval/mse') == 'baseline/eval/mse'
  assert metrics.length_key(64, 'accuracy') == 'length/64/accuracy'
  assert metrics.ood_key('accuracy') == 'ood/accuracy'
  assert metrics.lrd_key('grad_init') == 'lrd/grad_init'
  for key in ('eval/mse', 'baseline/eval/mse', 'length/64/mse', 'ood/mse'):
    assert metrics.measured_key(key) == 'eval/mse', key
  found = {metrics.length_key(n, name): 0.5 for n in (8, 64) for name in ('accuracy', 'loss')}
  assert metrics.lengths_of({**found, 'eval/accuracy': 1.0, 'length/x/accuracy': 0.0}) == {
      8: {'accuracy', 'loss'}, 64: {'accuracy', 'loss'}}


@pytest.mark.parametrize('key,higher,bounded', [
    ('eval/accuracy', True, True), ('eval/token_accuracy', True, True),
    ('eval/exact_match', True, True), ('ood/accuracy', True, True),
    ('length/128/exact_match', True, True), ('eval/mse', False, False),
    ('baseline/eval/mse', False, False), ('eval/mae', False, False),
    ('eval/loss', False, False), ('train/loss', False, False),
    ('eval/bits_per_char', False, False), ('eval/score', True, False)])
def test_the_metric_table(key, higher, bounded):
  assert metrics.higher_is_better(key) is higher
  assert metrics.is_bounded(key) is bounded
  assert metrics.value_format(key) == ('{:.3f}' if bounded else '{:.3g}')


def test_the_task_spec_comes_first_for_the_metric_it_names():
  for key in ('eval/score', 'baseline/eval/score', 'length/32/score', 'ood/score'):
    assert metrics.higher_is_better(key, SCORE) is True, key
    assert metrics.higher_is_better(key, {**SCORE, 'higher_is_better': False}) is False, key
  # The spec speaks for its own metric only: the loss stays lower-is-better.
  assert metrics.higher_is_better('eval/loss', {**SCORE, 'metric': 'eval/loss',
                                                'higher_is_better': True}) is True
  assert metrics.higher_is_better('eval/loss', SCORE) is False
  assert metrics.higher_is_better('eval/perplexity', PERPLEXITY) is False
  assert metrics.arrow('eval/perplexity', PERPLEXITY) == '↓'


def test_labels_of_known_eval_metrics_only():
  assert metrics.label('eval/mse') == 'MSE' and metrics.label('eval/exact_match') == 'exact match'
  assert metrics.label('eval/token_accuracy') is None and metrics.label('ood/accuracy') is None


def _record(arch, value, spec, *, seed=0, task='t'):
  cell = Cell(arch=arch, task=task, size='small', seed=seed, task_params={'length': 8})
  return {'schema': 4, 'run_id': 'r', 'cell_id': cell.digest, 'suite': 's', 'arch': arch,
          'task': task, 'size': 'small', 'seed': seed, 'status': 'ok', 'error': None,
          'config': {'cell': cell.to_dict(), 'task': {'length': 8}, 'task_spec': dict(spec)},
          'metrics': {spec['metric']: value, 'eval/loss': 1.0}, 'perf': {},
          'env': {'cpu': 'c', 'device_kind': 'cpu'}}


@pytest.mark.parametrize('spec,base,new,expected', [
    (SCORE, 10.0, 20.0, 'better'), (SCORE, 20.0, 10.0, 'worse'),
    (PERPLEXITY, 20.0, 10.0, 'better'), (PERPLEXITY, 10.0, 20.0, 'worse')])
def test_compare_judges_by_the_specs_direction(spec, base, new, expected):
  result = compare.compare([_record('lstm', base, spec)], [_record('lstm', new, spec)],
                           timing=False)
  (row,) = [r for r in result.rows if r.metric == spec['metric']]
  assert row.verdict == expected and row.higher_is_better is spec['higher_is_better']
  assert row.log_scale and row.tolerance == pytest.approx(math.log(metrics.RATIO_BAND))
  arrow = '↑' if spec['higher_is_better'] else '↓'
  assert f'## t: {spec["metric"]} {arrow}' in compare.to_markdown(result)


def _claim_spec(metric, **kwargs):
  return rep.spec(title='t', paper='p', size='cpu', seeds_rule='mean', seeds_rule_source='s',
                  checkpoint='last', rows=[], departures=['d'],
                  claims=[rep.claim('lstm beats gru', 't', metric, 'lstm', ('gru',), **kwargs)])


@pytest.mark.parametrize('kwargs', [{'margin': 0.1}, {'factor': 1.5}])
def test_a_claim_on_a_higher_is_better_metric_not_named_accuracy(kwargs):
  """lstm scores 0.9, gru 0.5 on a metric whose spec says higher is better: the claim that
  lstm beats gru holds (judged upside down, as a loss, before metrics.py)."""
  records = [_record('lstm', 0.9, SCORE), _record('gru', 0.5, SCORE)]
  (claim,) = rep.judge(_claim_spec('eval/score', **kwargs), records)['claims']
  assert claim['verdict'] == 'qualitative: holds'
  swapped = [_record('lstm', 0.5, SCORE), _record('gru', 0.9, SCORE)]
  (claim,) = rep.judge(_claim_spec('eval/score', **kwargs), swapped)['claims']
  assert claim['verdict'] == 'qualitative: fails'


def test_a_claim_on_a_lower_is_better_metric_by_its_spec():
  records = [_record('lstm', 2.0, PERPLEXITY), _record('gru', 4.0, PERPLEXITY)]
  (claim,) = rep.judge(_claim_spec('eval/perplexity', factor=1.5), records)['claims']
  assert claim['verdict'] == 'qualitative: holds'


def test_reproduction_tolerance_by_boundedness_not_direction():
  assert rep.tolerance('eval/score', [10.0])[:3:2] == (pytest.approx(math.log(1.25)), True)
  assert rep.tolerance('eval/exact_match', [0.5])[:3:2] == (pytest.approx(0.02), False)
  # A metric that can be negative has no log: 25% of archbench's value.
  assert rep.tolerance('eval/score', [-4.0])[:3:2] == (pytest.approx(1.0), False)


# ---------------------------------------------------------------------------------------
# Levels: at chance, partial, solved.

@pytest.mark.parametrize('value,expected', [
    (0.21, 'at chance'), (0.22, 'at chance'), (0.23, 'partial'), (0.619, 'partial'),
    (0.9, 'solved'), (0.1, 'at chance')])
def test_levels_of_an_accuracy(value, expected):
  """Cycle navigation: chance 0.2, solved at 0.9; at chance within 0.02 of the best baseline."""
  assert metrics.level(value, {'chance': 0.2, 'constant': 0.18}, 0.9, 'ood/accuracy',
                       True) == expected


@pytest.mark.parametrize('value,expected', [
    (0.204, 'at chance'), (0.173, 'at chance'), (0.14, 'at chance'), (0.13, 'partial'),
    (0.0173, 'solved'), (1e-5, 'solved')])
def test_levels_of_a_loss_use_a_ratio(value, expected):
  """Copy memory: memoryless loss 0.173, solved at a tenth of it; at chance within a factor
  1.25 of the baseline (0.173 / 1.25 = 0.138)."""
  assert metrics.level(value, {'constant': 0.173}, 0.0173, 'eval/loss', False) == expected


def test_the_strongest_baseline_sets_the_level():
  """ListOps: 0.34 beats the majority class (0.18) but not the root-operator rule (0.338)."""
  both = {'constant': 0.182, 'root_operator': 0.338}
  assert metrics.strongest(both, True) == ('root_operator', 0.338)
  assert metrics.level(0.3405, both, 0.95, 'eval/accuracy', True) == 'at chance'
  assert metrics.level(0.3405, {'constant': 0.182}, 0.95, 'eval/accuracy', True) == 'partial'
  assert metrics.level(0.5, {}, 0.95, 'eval/accuracy', True) is None  # nothing to place it
  assert metrics.level(0.97, {}, 0.95, 'eval/accuracy', True) == 'solved'


def test_trivial_baselines_of_a_records_metrics():
  values = {'eval/accuracy': 0.34, 'baseline/eval/accuracy': 0.182,
            'baseline/root_operator/accuracy': 0.338, 'baseline/chance/accuracy': 0.1,
            'baseline/eval/loss': 2.25}
  assert metrics.trivial_baselines(values, 'eval/accuracy') == {
      'constant': 0.182, 'root_operator': 0.338, 'chance': 0.1}
  assert metrics.trivial_baselines(values, 'eval/loss') == {'constant': 2.25}
  assert metrics.trivial_baselines(values, 'ood/accuracy') == {}  # declared per row instead
  assert metrics.named_baseline_key('root_operator', 'eval/accuracy') == \
      'baseline/root_operator/accuracy'


def test_a_stated_floor_is_not_a_trivial_baseline():
  """lm's entropy rate (baseline/floor/bits_per_char) is the best any model can reach: as
  the 'strongest baseline' it put a model at 1.5 bits/char, half the unigram's 2.95, `at
  chance`."""
  values = {'eval/bits_per_char': 1.5, 'baseline/eval/bits_per_char': 2.95,
            'baseline/floor/bits_per_char': 1.28}
  assert metrics.trivial_baselines(values, 'eval/bits_per_char') == {'constant': 2.95}
  assert metrics.floor_value(values, 'eval/bits_per_char') == 1.28
  assert metrics.floor_value(values, 'eval/accuracy') is None
  assert metrics.level(1.5, metrics.trivial_baselines(values, 'eval/bits_per_char'), 1.34,
                       'eval/bits_per_char', higher=False) == metrics.PARTIAL


def test_value_range():
  assert metrics.value_range('eval/accuracy') == (0.0, 1.0)
  assert metrics.value_range('eval/mse') == (0.0, math.inf)
  assert metrics.value_range('eval/score') == (-math.inf, math.inf)


def test_report_headers_take_the_specs_direction():
  text = report.summary_markdown([_record('lstm', 0.9, PERPLEXITY)])
  assert 't (eval/perplexity ↓)' in text and 't (loss ↓)' in text
  text = report.summary_markdown([_record('lstm', 0.9, SCORE)])
  assert 't (eval/score ↑)' in text
