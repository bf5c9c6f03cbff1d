"""The claims study (benchmarks/claims/, results/claims.py, `archbench claims`): verdicts on
fabricated records with known answers (holds, fails, depends, too few seeds: no verdict),
a user's claim from a plug-in file listed and judged, the command's --list and its
one-line usage errors, claims.md / claims.tex written from records; one tiny study end to
end through the command line (slow)."""
import json
import sys
import textwrap

import pytest

from archbench.benchmarks import claims as claims_lib
from archbench.benchmarks import cli, plugins
from archbench.benchmarks.results import claims as rules


def _record(arch, task, seed, metrics, cell='c', status='ok', perf=None, task_params=None,
            arch_config=None):
  return {'run_id': 'r', 'cell_id': cell, 'suite': 'claims-cpu', 'arch': arch, 'task': task,
          'size': 'small', 'seed': seed, 'status': status,
          'config': {'task': task_params or {}, 'arch': arch_config or {}},
          'metrics': metrics, 'perf': perf or {}}


def _accuracies(arch, task, values, **kwargs):
  return [_record(arch, task, s, {'eval/accuracy': v}, **kwargs) for s, v in enumerate(values)]


def _claim(rule, cells=('c',)):
  return rules.spec(name='t', text='t', source='s', family='CNN', experiment='e',
                    statistic='s', rule=rules.plain(rule), threshold='th', cells=list(cells))


LOCALITY = rules.compare('eval/accuracy', 'cnn', ['vit'], [
    rules.condition('digits', task='digits'),
    rules.condition('pdigits', expect=False, task='pdigits')])
CNN_WINS = [0.98, 0.985, 0.99]
VIT_LOSES = [0.90, 0.91, 0.905]


def test_compare_holds_when_every_condition_goes_as_predicted():
  records = (_accuracies('cnn', 'digits', CNN_WINS) + _accuracies('vit', 'digits', VIT_LOSES)
             + _accuracies('cnn', 'pdigits', [0.90, 0.93, 0.91])
             + _accuracies('vit', 'pdigits', [0.91, 0.92, 0.915]))
  judged = rules.judge_claim(_claim(LOCALITY), records)
  assert judged['verdict'] == rules.HOLDS and judged['seeds'] == 3
  (digits, pdigits) = judged['tests']
  assert digits['passes'] and digits['p_adjusted'] < 0.05 and digits['n'] == 3
  assert not pdigits['passes']
  assert [o['as_predicted'] for o in judged['outcomes']] == [True, True]
  row = next(e for e in judged['evidence'] if (e['arch'], e['condition']) == ('cnn', 'digits'))
  assert row['mean'] == pytest.approx(0.985) and row['low'] < 0.985 < row['high'] <= 1.0


def test_compare_depends_names_where_it_holds_and_fails():
  """The CNN keeps its edge on permuted pixels: the prediction fails there only."""
  records = (_accuracies('cnn', 'digits', CNN_WINS) + _accuracies('vit', 'digits', VIT_LOSES)
             + _accuracies('cnn', 'pdigits', CNN_WINS) + _accuracies('vit', 'pdigits', VIT_LOSES))
  judged = rules.judge_claim(_claim(LOCALITY), records)
  assert judged['verdict'] == rules.DEPENDS
  assert judged['condition'] == 'holds digits; fails pdigits'


def test_compare_fails_when_the_other_model_wins_and_says_so():
  records = (_accuracies('cnn', 'digits', VIT_LOSES) + _accuracies('vit', 'digits', CNN_WINS)
             + _accuracies('cnn', 'pdigits', CNN_WINS) + _accuracies('vit', 'pdigits', VIT_LOSES))
  judged = rules.judge_claim(_claim(LOCALITY), records)
  assert judged['verdict'] == rules.FAILS
  assert 'significantly the other way' in judged['reason']


def test_edge_lost_needs_a_measurably_smaller_edge_not_a_missing_test():
  """Locality: the CNN's edge over the ViT on digits must shrink on pdigits; a CNN that
  keeps the same edge there fails that condition even where one of its tests there would
  not reach significance."""
  rule = rules.edge_lost('eval/accuracy', 'cnn', ['vit'],
                         kept=rules.condition('digits', task='digits'),
                         lost=rules.condition('pdigits', task='pdigits'))
  digits = _accuracies('cnn', 'digits', CNN_WINS) + _accuracies('vit', 'digits', VIT_LOSES)
  shrinks = _accuracies('cnn', 'pdigits', [0.90, 0.91, 0.905]) + _accuracies(
      'vit', 'pdigits', [0.905, 0.912, 0.91])
  judged = rules.judge_claim(_claim(rule), digits + shrinks)
  assert judged['verdict'] == rules.HOLDS
  edge = next(t for t in judged['tests'] if t['condition'] == 'pdigits')
  assert edge['difference'] == pytest.approx(0.08 + 0.004, abs=1e-3) and edge['passes']
  same_edge = _accuracies('cnn', 'pdigits', [0.96, 0.975, 0.97]) + _accuracies(
      'vit', 'pdigits', [0.88, 0.89, 0.885])
  judged = rules.judge_claim(_claim(rule), digits + same_edge)
  assert judged['verdict'] == rules.DEPENDS and judged['condition'] == (
      'holds digits; fails pdigits')
  assert any(e['arch'] == 'edge cnn−vit, pdigits' for e in judged['evidence'])


def test_a_difference_within_the_seeds_noise_does_not_hold():
  rule = rules.compare('eval/accuracy', 'cnn', ['vit'], [rules.condition('d', task='digits')])
  records = _accuracies('cnn', 'digits', [0.95, 0.90, 0.99]) + _accuracies(
      'vit', 'digits', [0.94, 0.93, 0.93])
  judged = rules.judge_claim(_claim(rule), records)
  assert judged['verdict'] == rules.FAILS and 'not significant' in judged['reason']


def test_margin_and_factor_are_thresholds_on_top_of_significance():
  records = _accuracies('cnn', 'digits', [0.951, 0.952, 0.953]) + _accuracies(
      'vit', 'digits', [0.941, 0.9421, 0.943])
  cond = [rules.condition('d', task='digits')]
  assert rules.judge_claim(_claim(rules.compare('eval/accuracy', 'cnn', ['vit'], cond)),
                           records)['verdict'] == rules.HOLDS
  assert rules.judge_claim(_claim(rules.compare('eval/accuracy', 'cnn', ['vit'], cond,
                                                margin=0.05)), records)['verdict'] == rules.FAILS
  # A time: lower is better, a factor 1.2 needed; 10 ms against 11 ms is not enough.
  times = [_record(a, 'adding', s, {}, perf={'step_ms': v + 0.01 * s})
           for a, v in (('transformer', 10.0), ('lstm', 11.0)) for s in range(3)]
  rule = rules.compare('perf/step_ms', 'transformer', ['lstm'],
                       [rules.condition('T', task='adding')], higher=False, factor=1.2)
  assert rules.judge_claim(_claim(rule), times)['verdict'] == rules.FAILS
  rule['factor'] = 1.05
  assert rules.judge_claim(_claim(rule), times)['verdict'] == rules.HOLDS


def test_rows_by_filter_and_a_metric_per_condition():
  """Pooling's shape: one architecture in two settings (rows by filter), judged on step
  time in one condition and on peak memory in the next (each lower is better)."""
  def cnn(pool, seed, step_ms, peak):
    return _record('cnn', 'digits', seed, {'eval/accuracy': 0.9},
                   perf={'step_ms': step_ms + 0.01 * seed, 'peak_bytes': peak + seed},
                   arch_config={'pool': pool})
  records = ([cnn(True, s, 3.0, 1000) for s in range(3)]
             + [cnn(False, s, 9.0, 1000) for s in range(3)])
  rule = rules.compare('perf/step_ms', 'pooled', ['unpooled'], [
      rules.condition('step time', task='digits'),
      rules.condition('memory', metric='perf/peak_bytes', higher=False, task='digits')],
      higher=False, rows={'pooled': {'arch': 'cnn', 'arch.pool': True},
                          'unpooled': {'arch': 'cnn', 'arch.pool': False}})
  judged = rules.judge_claim(_claim(rule), records)
  assert judged['verdict'] == rules.DEPENDS  # faster, but no less memory
  assert judged['condition'] == 'holds step time; fails memory'
  assert {e['metric'] for e in judged['evidence']} == {'perf/step_ms', 'perf/peak_bytes'}
  md = '\n'.join(rules.claim_markdown(judged))
  assert '| memory | unpooled | perf/peak_bytes | 1e+03 [' in md


def test_fewer_than_three_seeds_or_no_records_give_no_verdict():
  records = _accuracies('cnn', 'digits', CNN_WINS[:2]) + _accuracies('vit', 'digits',
                                                                      VIT_LOSES[:2])
  rule = rules.compare('eval/accuracy', 'cnn', ['vit'], [rules.condition('d', task='digits')])
  judged = rules.judge_claim(_claim(rule), records)
  assert judged['verdict'] == rules.NO_VERDICT
  assert '2 ok seed(s), 3 needed' in judged['reason']
  # A failed seed does not count.
  records = _accuracies('cnn', 'digits', CNN_WINS) + _accuracies('vit', 'digits', VIT_LOSES)
  records[-1].update(status='error', error='NotPrepared: dataset x is not prepared. Prepare '
                    'it with `archbench data prepare x` (at speech.py:476)')
  judged = rules.judge_claim(_claim(rule), records)
  assert judged['verdict'] == rules.NO_VERDICT
  assert judged['reason'].endswith('(error cells among them; the first: NotPrepared: dataset x '
                                   'is not prepared. Prepare it with `archbench data prepare '
                                   'x`)')  # what to do, without the source location
  assert rules.judge_claim(_claim(rule, cells=['other']), records)['verdict'] == \
      rules.NO_VERDICT


def test_records_of_other_cells_are_not_the_claims():
  records = (_accuracies('cnn', 'digits', CNN_WINS, cell='mine')
             + _accuracies('vit', 'digits', VIT_LOSES, cell='mine')
             + _accuracies('vit', 'digits', [1.0, 1.0, 1.0], cell='someone-elses'))
  rule = rules.compare('eval/accuracy', 'cnn', ['vit'], [rules.condition('d', task='digits')])
  assert rules.judge_claim(_claim(rule, cells=['mine']), records)['verdict'] == rules.HOLDS


def test_trend_tests_per_seed_slopes_and_versus_compares_them():
  depth = [_record('cnn', 'digits', s, {'eval/accuracy': 0.9 + (0.03 + 0.002 * s) * k},
                   arch_config={'stages': k}) for s in range(3) for k in (1, 2, 3)]
  rule = rules.trend('eval/accuracy', 'arch.stages', ['cnn'],
                     [rules.condition('digits', task='digits')])
  judged = rules.judge_claim(_claim(rule), depth)
  assert judged['verdict'] == rules.HOLDS
  slope = next(e for e in judged['evidence'] if e['point'] == 'slope')
  assert slope['mean'] == pytest.approx(0.032)
  flat = [dict(r, metrics={'eval/accuracy': 0.95 + 0.01 * (r['seed'] - 1) * (
      r['config']['arch']['stages'] - 2)}) for r in depth]
  assert rules.judge_claim(_claim(rule), flat)['verdict'] == rules.FAILS
  # Loss against log2(parameters): the decoder's falls faster than the LSTM's.
  lm = [_record(a, 'lm', s, {'eval/bits_per_char': 3.0 - (drop + 0.01 * s * s * (a == 'lstm'))
                             * k},
                perf={'params': 20000 * 2 ** k})
        for a, drop in (('decoder', 0.4), ('lstm', 0.1)) for s in range(3) for k in (0, 2)]
  rule = rules.trend('eval/bits_per_char', 'perf/params', ['decoder', 'lstm'],
                     [rules.condition('lm', task='lm')], increasing=False, log_x=True,
                     versus=('decoder', 'lstm'))
  judged = rules.judge_claim(_claim(rule), lm)
  assert judged['verdict'] == rules.HOLDS
  (test,) = judged['tests']
  assert (test['a'], test['b']) == ('decoder', 'lstm')
  assert test['difference'] == pytest.approx(-0.4 + (0.1 + 0.05 / 3))  # mean slopes' gap


def test_a_trend_condition_may_have_its_own_x():
  """Against parameters at the full step budget, and against training FLOPs (a derived
  figure: FLOPs per step times the steps trained) over every run."""
  lm = [_record(a, 'lm', s, {'eval/bits_per_char': 3.0 - drop * k * (1 + 0.1 * s) - 0.05 * j,
                             'train/steps': 300 * 2 ** j}, perf={'params': 20000 * 2 ** k,
                                                       'flops_per_step': 1e6 * 2 ** k})
        for a, drop in (('decoder', 0.3), ('lstm', 0.1)) for s in range(3) for k in (0, 2)
        for j in (0, 1)]
  for r in lm:
    r['config']['train'] = {'steps': r['metrics']['train/steps']}
  assert rules.value(lm[-1], 'perf/train_flops') == 1e6 * 4 * 600
  rule = rules.trend('eval/bits_per_char', 'perf/params', ['decoder', 'lstm'], [
      rules.condition('parameters', **{'task': 'lm', 'train.steps': 600}),
      rules.condition('FLOPs', x='perf/train_flops', task='lm')], increasing=False,
      log_x=True, versus=('decoder', 'lstm'))
  judged = rules.judge_claim(_claim(rule), lm)
  assert judged['verdict'] == rules.HOLDS
  slopes = {(e['condition'], e['arch']): e['mean'] for e in judged['evidence']
            if e['point'] == 'slope'}
  assert slopes[('parameters', 'decoder')] == pytest.approx(-0.3 * 1.1)  # per doubling
  # Over FLOPs: 4 points per seed (sizes x steps), one least-squares line through them.
  assert -0.3 * 1.1 < slopes[('FLOPs', 'decoder')] < -0.05
  assert {e['point'] for e in judged['evidence'] if e['condition'] == 'FLOPs'} == {
      'slope', 3e8, 6e8, 1.2e9, 2.4e9}


def test_a_difference_of_two_metrics_is_a_metric_the_rules_read():
  """The train-validation gap (val/loss minus train/loss): pooled against unpooled rows."""
  def cnn(pool, gaps):
    return [_record('cnn', 'digits', s, {'val/loss': 0.3 + g, 'train/loss': 0.3},
                    arch_config={'pool': pool}) for s, g in enumerate(gaps)]
  gap = rules.difference('val/loss', 'train/loss')
  assert rules.value(cnn(True, [0.25])[0], gap) == pytest.approx(0.25)
  assert rules.value({'metrics': {'val/loss': 1.0}}, gap) is None
  rule = rules.compare(gap, 'pooled', ['unpooled'], [rules.condition('200', task='digits')],
                       higher=False, rows={'pooled': {'arch': 'cnn', 'arch.pool': True},
                                           'unpooled': {'arch': 'cnn', 'arch.pool': False}})
  smaller = cnn(True, [0.10, 0.12, 0.11]) + cnn(False, [0.30, 0.33, 0.31])
  assert rules.judge_claim(_claim(rule), smaller)['verdict'] == rules.HOLDS
  larger = cnn(True, [0.30, 0.33, 0.31]) + cnn(False, [0.10, 0.12, 0.11])
  judged = rules.judge_claim(_claim(rule), larger)
  assert judged['verdict'] == rules.FAILS and 'significantly the other way' in judged['reason']
  assert f'| {gap} ↓ |' in '\n'.join(rules.claim_markdown(judged))


def test_the_equal_compute_budget_buys_attention_fewer_steps_at_long_range():
  """long-range's equal-FLOPs cells: the LSTM trains its own 1000 steps, and the
  Transformer, whose attention grows as T^2, fewer the longer T is."""
  from archbench.benchmarks.harness import runner
  steps = {}
  for cell in claims_lib.get('long-range').cells('cpu'):
    if cell.train.budget_flops and cell.seed == 0:
      tc = runner.resolved_train(cell.train, runner.train_flops_per_example(cell))
      steps[(cell.arch, cell.task_params['length'])] = tc.steps
  assert steps[('lstm', 64)] == steps[('lstm', 256)] == 1000
  assert steps[('transformer', 256)] < steps[('transformer', 64)] < 1000
  spec = claims_lib.get('long-range').spec('cpu')
  assert [c['where'].get('budget.matched') for c in spec['rule']['conditions']] == [
      'steps', 'steps', 'steps', 'flops', 'flops']


@pytest.mark.parametrize('size', claims_lib.SIZES)
def test_every_cell_is_judged_and_every_condition_has_cells(size):
  """At each size, each built-in claim's conditions select some of its cells, and every
  cell falls in some condition: no experiment run for nothing, no condition left empty
  (a length the full size adds is a condition there too)."""
  import dataclasses
  for claim in claims_lib.all_claims():
    if claim.why_untestable():
      continue
    conditions = claim.rule_at(size)['conditions']
    cells = claim.cells(size)
    settings = [{'arch': c.arch, 'task': c.task, 'config': {
        'task': c.task_params, 'arch': c.arch_overrides,
        'train': dataclasses.asdict(c.train),
        'budget': {'matched': c.train.budget_matched}}} for c in cells]
    for cond in conditions:
      assert any(rules._matches(r, cond['where']) for r in settings), (claim.name, cond)
    for r, cell in zip(settings, cells):
      assert any(rules._matches(r, cond['where']) for cond in conditions), (claim.name,
                                                                             cell.name)


def test_a_rule_may_depend_on_the_size():
  """scalability's parameters condition reads each size's own full step budget."""
  claim = claims_lib.get('scalability')
  steps = {size: claim.spec(size)['rule']['conditions'][0]['where']['train.steps']
           for size in claims_lib.SIZES}
  assert steps == {size: max(c.train.steps for c in claim.cells(size))
                   for size in claims_lib.SIZES}


def test_random_walk_is_judged_against_persistence():
  """Models at persistence's MSE on every seed's own walk: no model beats it, fails."""
  def walk(arch, excess):
    return [_record(arch, 'random_walk', s, {'eval/mse': 4.5 + s * 0.3 + excess[s],
                                             'baseline/persistence/mse': 4.5 + s * 0.3})
            for s in range(3)]
  rule = rules.beats_baseline('eval/mse', ['lstm', 'tcn'], 'persistence',
                              [rules.condition('random walk', task='random_walk')])
  judged = rules.judge_claim(_claim(rule), walk('lstm', [0.02, -0.01, 0.03])
                             + walk('tcn', [0.1, 0.12, 0.09]))
  assert judged['verdict'] == rules.FAILS
  assert {t['b'] for t in judged['tests']} == {'persistence'}
  assert any(e['arch'] == 'persistence (baseline)' for e in judged['evidence'])
  # A model that does beat its baseline on every seed: holds (quantifier any).
  judged = rules.judge_claim(_claim(rule), walk('lstm', [-0.5, -0.52, -0.49])
                             + walk('tcn', [0.1, 0.12, 0.09]))
  assert judged['verdict'] == rules.HOLDS


def test_untestable_claims_say_why_and_never_a_verdict():
  claim = rules.spec(name='u', text='t', source='s', family='RNN', experiment='e',
                     statistic='s', rule=None, threshold='th', untestable='no such task')
  judged = rules.judge_claim(claim, [])
  assert judged['verdict'] == rules.NOT_TESTABLE and judged['reason'] == 'no such task'
  with pytest.raises(ValueError, match='reason'):
    rules.spec(name='u', text='t', source='s', family='RNN', experiment='e', statistic='s',
               rule=None, threshold='th')
  with pytest.raises(ValueError, match='untestable'):
    claims_lib.Claim(name='x', text='t', source='s', family='f', experiment='e',
                     statistic='s', threshold='t')


def test_claims_md_tex_and_plots_written_from_records(tmp_path):
  records = (_accuracies('cnn', 'digits', CNN_WINS) + _accuracies('vit', 'digits', VIT_LOSES)
             + _accuracies('cnn', 'pdigits', [0.90, 0.93, 0.91])
             + _accuracies('vit', 'pdigits', [0.91, 0.92, 0.915]))
  specs = [_claim(LOCALITY), rules.spec(name='later', text='not yet', source='s',
                                        family='RNN', experiment='e', statistic='s',
                                        rule=None, threshold='th', untestable='needs a task')]
  rules.write_spec(tmp_path, specs)
  assert rules.saved(tmp_path) == specs
  rules.write(tmp_path, rules.saved(tmp_path), records, wall_s=12.0)
  md = (tmp_path / rules.FILE_MD).read_text()
  assert '| t | t | **holds** | 3 |' in md
  assert '| later | not yet | **not testable** (needs a task) | – | – | – |' in md
  assert '| digits: cnn 0.985 [' in md and 'vs vit 0.905 [' in md  # the evidence column
  assert '0.985 [' in md and 'n=3' in md and 'BH-adjusted' in md
  tex = (tmp_path / rules.FILE_TEX).read_text()
  assert r'\begin{tabular}' in tex and 'holds' in tex
  assert rules.plot_files(tmp_path) == [tmp_path / 'claim_t.png']
  # Re-judged later without wall_s: the run's time is kept.
  rules.write(tmp_path, specs, records)
  assert json.loads((tmp_path / rules.FILE_JSON).read_text())['wall_s'] == 12.0
  (tmp_path / rules.FILE_JSON).write_text('{"spec": [{"name": 1}]}')
  with pytest.raises(Exception, match='not a claims study'):
    rules.saved(tmp_path)


def test_built_in_claims_are_many_and_declared_honestly():
  built_in = claims_lib.all_claims()
  assert len(built_in) >= 10
  names = [c.name for c in built_in]
  assert len(names) == len(set(names))
  for claim in built_in:
    assert claim.text and claim.source and claim.threshold and claim.statistic
    if claim.untestable is None:
      for size in claims_lib.SIZES:
        assert claim.rule_at(size)['kind'] in rules.KINDS and claim.plans is not None
  assert claims_lib.get('stock-prices').rule['baseline'] == 'persistence'
  for name in ('pooling', 'pooling-overfitting'):  # the CNN's pool field; digits' reduced set
    assert claims_lib.get(name).why_untestable() is None


REPO = __import__('pathlib').Path(__file__).resolve().parents[1]
COMMITTED = REPO / 'results' / 'claims-cpu'


def test_committed_study_is_current_complete_and_honest():
  """results/claims-cpu holds every built-in claim as declared now (wording, rule), judged
  on its records as claims.json says (re-judge: python tools/rejudge.py
  results/claims-cpu); every testable claim has a verdict on at least three seeds, and the
  random walk is judged against persistence."""
  from archbench.benchmarks.results import records as records_lib
  saved = json.loads((COMMITTED / rules.FILE_JSON).read_text())
  built_in = {c.name: c for c in claims_lib.all_claims()}
  assert [c['name'] for c in saved['spec']] == list(built_in)
  for spec in saved['spec']:
    claim = built_in[spec['name']]
    assert spec['rule'] == (None if claim.why_untestable()
                            else rules.plain(claim.rule_at(spec['size'])))
    assert (spec['text'], spec['threshold'], spec['untestable']) == (
        claim.text, claim.threshold, claim.why_untestable()), 'stale: re-judge'
  judged = rules.judge(saved['spec'], records_lib.load_records(COMMITTED / 'results.jsonl'))
  assert [c['verdict'] for c in judged['claims']] == [c['verdict'] for c in saved['claims']]
  for c in judged['claims']:
    if c['verdict'] != rules.NOT_TESTABLE:
      assert c['verdict'] in (rules.HOLDS, rules.FAILS, rules.DEPENDS), c['name']
      assert c['seeds'] >= rules.MIN_SEEDS and c['tests'], c['name']
      assert (COMMITTED / rules.plot_name(c)).is_file()
  walk = next(c for c in judged['claims'] if c['name'] == 'stock-prices')
  assert {t['b'] for t in walk['tests']} == {'persistence'}


_PLUGIN = '''
from archbench.benchmarks.claims import Claim, register
from archbench.benchmarks.config import task_plan
from archbench.benchmarks.results import claims as rules

register(Claim(
    name='my-cnn-claim', text='my CNN beats the ViT', source='my lab notebook',
    family='CNN', experiment='digits, few steps', statistic='accuracy',
    threshold='paired t-test',
    rule=rules.compare('eval/accuracy', 'cnn', ['vit'],
                       [rules.condition('digits', task='digits')]),
    plans=lambda size: {'size': 'tiny', 'seeds': (0, 1, 2), 'tasks': {'digits': task_plan(
        {}, {'steps': STEPS, 'batch_size': 16, 'steps_per_dispatch': STEPS},
        archs=('cnn', 'vit'))}}))
'''


@pytest.fixture
def plugin_claim(tmp_path, monkeypatch):
  """A user's claim in a file of its own; registrations are undone after the test."""
  monkeypatch.setattr(claims_lib, '_CLAIMS', dict(claims_lib._CLAIMS))
  monkeypatch.setattr(plugins, '_loaded', list(plugins._loaded))
  before = set(sys.modules)
  path = tmp_path / 'my_claim.py'
  path.write_text(textwrap.dedent(_PLUGIN).replace('STEPS', '20'))
  yield path
  for name in set(sys.modules) - before:
    if name.startswith('archbench_plugin_'):
      del sys.modules[name]


def test_a_users_claim_from_a_file_is_registered_listed_and_judged(plugin_claim, tmp_path):
  plugins.load(str(plugin_claim))
  claim = claims_lib.get('my-cnn-claim')
  assert claims_lib.names()[-1] == 'my-cnn-claim'  # after the built-in claims
  cells = claim.cells('cpu')
  assert {(c.arch, c.task, c.seed) for c in cells} == {
      (a, 'digits', s) for a in ('cnn', 'vit') for s in range(3)}
  spec = claim.spec('cpu', [c.digest for c in cells])
  by_digest = {(c.arch, c.seed): c.digest for c in cells}
  records = [_record(a, 'digits', s, {'eval/accuracy': v}, cell=by_digest[(a, s)])
             for a, values in (('cnn', CNN_WINS), ('vit', VIT_LOSES))
             for s, v in enumerate(values)]
  assert rules.judge_claim(spec, records)['verdict'] == rules.HOLDS


def test_claims_list_shows_cells_runtime_rule_or_why_not(plugin_claim, capsys, monkeypatch):
  """--list on a registry of the user's claim and one not testable (the built-in claims'
  listing builds every synthetic task's held-out set: the slow test below)."""
  plugins.load(str(plugin_claim))
  later = claims_lib.Claim(name='later', text='not yet', source='s', family='RNN',
                           experiment='e', statistic='s', threshold='th',
                           untestable='needs a task')
  monkeypatch.setattr(claims_lib, '_CLAIMS', {'my-cnn-claim': claims_lib.get('my-cnn-claim'),
                                              'later': later})
  assert cli.run(['archbench', 'claims', '--list']) == 0
  out = capsys.readouterr().out
  assert '| my-cnn-claim | CNN | my CNN beats the ViT | 6, ~' in out
  assert 'cpu: cells' in out and 'full: cells' in out and '| paired t-test |' in out
  assert '| later | RNN | not yet | not testable: needs a task |' in out
  assert 'cpu: 6 cells' in out


@pytest.mark.slow
def test_claims_list_names_every_built_in_claim(capsys):
  assert cli.run(['archbench', 'claims', '--list', '--size', 'cpu']) == 0
  out = capsys.readouterr().out
  assert len(claims_lib.names()) >= 10
  for name in claims_lib.names():
    row = next(line for line in out.splitlines() if line.startswith(f'| {name} |'))
    cells = row.split(' | ')[3]  # every built-in claim is testable here: cells, runtimes
    assert cells.split(',')[0].isdigit() and ' min / ' in cells, row
  assert 'full:' not in out and 'not testable' not in out
  assert 'cpu: 231 cells' in out


@pytest.mark.parametrize('argv, message', [
    (['claims', 'no-such-claim'], "unknown claim 'no-such-claim'"),
    (['claims', '--size', 'huge'], "--size 'huge'"),
    (['claims', '--list', 'locality'], 'takes no claim name'),
    (['claims', '--list', '--workers', '2'], 'runs nothing'),
    (['claims', '--resume', '/nonexistent/dir'], 'no claims study'),
    (['claims', '--suite', 'quick'], 'claims does not take --suite'),
    (['claims', '--config.train.steps=5'], 'the claims\' experiments are their own'),
    (['claims', '--config.executor=warp'], "config.executor 'warp' is not known"),
    (['claims', '--list', '--config.executor=ray'], 'claims --list runs nothing'),
    (['claims', '--config', 'x.py'], 'not a suite file'),
    (['claims', '--resume', '/tmp', '--config.workers=3'], 'drop --config'),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
  assert cli.run(['archbench', *argv]) == 2
  err = capsys.readouterr().err
  assert message in err and err.count('\n') == 1


def test_the_claims_run_on_the_executor_the_user_names():
  """--config.<path> sets how the cells run (workers, executor, Slurm), nothing else."""
  from archbench.benchmarks.flows import claims as flow
  _, fv, _ = cli.parse(['archbench', 'claims', '--config.workers=3',
                        '--config.executor=slurm', '--config.slurm.local=True',
                        '--config.execution.time_limit_s=60'])
  _, plan = flow.plan('cpu', ['pooling'], config=fv.config)
  assert plan.workers == 3 and plan.dispatch['executor'] == 'slurm'
  assert plan.dispatch['slurm']['local'] is True and plan.execution.time_limit_s == 60
  assert len(plan.cells) == 6
  _, plan = flow.plan('cpu', ['pooling'], workers=1)  # the defaults: local, 2 workers
  assert (plan.workers, plan.dispatch['executor']) == (1, 'local')
  assert flow.plan('cpu', ['pooling'])[1].workers == 2


@pytest.mark.slow
def test_a_plugin_claim_runs_end_to_end_and_report_rejudges(plugin_claim, tmp_path, capsys):
  out = tmp_path / 'study'
  code = cli.run(['archbench', 'claims', 'my-cnn-claim', '--plugin', str(plugin_claim),
                  '--out', str(out), '--workers', '1'])
  printed = capsys.readouterr().out
  assert code == 0
  assert '| my-cnn-claim | my CNN beats the ViT |' in printed
  judged = json.loads((out / rules.FILE_JSON).read_text())
  (claim,) = judged['claims']
  assert claim['verdict'] in rules.VERDICTS and claim['seeds'] == 3
  assert 'Claims: what people believe, tested' in (out / 'report.html').read_text()
  (out / rules.FILE_MD).unlink()
  assert cli.run(['archbench', 'report', str(out)]) == 0
  assert 'my-cnn-claim' in (out / rules.FILE_MD).read_text()
  # A study that lost its last cell continues with --resume: that cell runs, then judging.
  lines = (out / 'results.jsonl').read_text().splitlines(keepends=True)
  (out / 'results.jsonl').write_text(''.join(lines[:-1]))
  assert cli.run(['archbench', 'claims', '--resume', str(out), '--plugin',
                  str(plugin_claim)]) == 0
  assert len((out / 'results.jsonl').read_text().splitlines()) == len(lines)
  assert json.loads((out / rules.FILE_JSON).read_text())['claims'][0]['seeds'] == 3
