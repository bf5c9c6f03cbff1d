"""Uncertainty and significance (benchmarks/results/significance.py and its report blocks,
significance_report.py): intervals and p-values against formulas written out here, "beats"
only for a separated pair, single seeds marked, the aggregate's 0 and 1, steps to solve, the
budget line and the validation curve panel. Synthetic records, no training."""
import math
import statistics

import numpy as np
import pytest
from scipy import stats

from archbench.benchmarks.results import curves, markup, plots, report
from archbench.benchmarks.results import significance as sig
from archbench.benchmarks.results import significance_report as sr


def _record(arch, value, seed=0, task='copy', *, metric='eval/accuracy', higher=True,
            baseline=0.25, status='ok', extra=None, config=None, curves_=None):
  return {
      'schema': 4, 'run_id': 'r', 'suite': 's', 'arch': arch, 'task': task, 'size': 'tiny',
      'seed': seed, 'status': status, 'error': None,
      'config': {'task': {}, 'train': {'steps': 100}, 'budget': {'size': 'tiny'},
                 'task_spec': {'metric': metric, 'higher_is_better': higher, 'solved': None},
                 **(config or {})},
      'metrics': {metric: value, f'baseline/{metric}': baseline, **(extra or {})}
      if status == 'ok' else {},
      'perf': {}, 'curves': curves_ or {}, 'env': {}}


# ---------------------------------------------------------------------------------------
# Intervals.

def test_t_interval_matches_the_textbook_formula():
  values = [0.61, 0.74, 0.69, 0.80]
  n, mean = len(values), statistics.fmean(values)
  half = stats.t.ppf(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n)
  iv = sig.t_interval(values)
  assert iv.n == 4 and iv.mean == pytest.approx(mean)
  assert (iv.low, iv.high) == pytest.approx((mean - half, mean + half))


def test_t_interval_of_one_seed_is_none_and_of_equal_seeds_a_point():
  assert sig.t_interval([0.5]) == sig.Interval(0.5, None, None, 1)
  assert sig.t_interval([0.5, 0.5, 0.5]) == sig.Interval(0.5, 0.5, 0.5, 3)


def test_interval_is_clipped_to_the_metrics_range():
  """[0, 1] for an accuracy: three seeds that disagree widely cross it unclipped."""
  wide = [0.0, 0.1, 0.9]
  assert sig.t_interval(wide).low < 0
  assert sig.interval_text(wide, '{:.3f}', 'eval/accuracy').startswith('0.333 [0.000, ')
  assert sig.interval_text([0.9], '{:.3f}') == f'0.900 {sig.SINGLE_SEED_MARK}'
  assert sig.interval_text([], '{:.3f}') == ''


def test_core_tables_show_the_interval_and_mark_single_seeds():
  records = [_record('gru', v, s) for s, v in enumerate([0.7, 0.8, 0.9])] + [
      _record('lstm', 0.5)]
  text = report.summary_markdown(records)
  accuracy = text.split('## Accuracy')[1].split('## ')[0]
  iv = sig.t_interval([0.7, 0.8, 0.9])
  assert iv.high > 1  # clipped to an accuracy's range
  assert f'| gru | 0.800 [{iv.low:.3f}, 1.000] n=3 |' in accuracy
  assert f'| lstm | 0.500 {sig.SINGLE_SEED_MARK} |' in accuracy
  assert sig.SINGLE_SEED_NOTE in accuracy  # the footnote of the mark
  # The tables' other renderings read the same cells: numbers stay right-aligned.
  table = next(b for b in markup.blocks(accuracy) if b.kind == 'table')
  assert markup.numeric_columns(table) == [False, True]


# ---------------------------------------------------------------------------------------
# Pairwise tests.

def test_paired_p_is_scipys_ttest_rel_and_handles_no_spread():
  a, b = [0.9, 0.8, 0.85, 0.95], [0.7, 0.75, 0.7, 0.8]
  d = np.subtract(a, b)
  t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
  assert sig.paired_p(a, b) == pytest.approx(2 * stats.t.sf(abs(t), len(d) - 1))
  assert sig.paired_p([1, 2, 3], [1, 2, 3]) == 1.0  # no difference at all
  assert sig.paired_p([1, 2, 3], [0, 1, 2]) == 0.0  # the same difference every seed


def test_benjamini_hochberg_by_hand():
  ps = [0.01, 0.04, 0.03, 0.20]
  m = len(ps)
  order = np.argsort(ps)
  ranked = np.array(ps)[order] * m / np.arange(1, m + 1)
  adjusted = np.minimum.accumulate(ranked[::-1])[::-1]  # step-up: monotone from the top
  expected = np.empty(m)
  expected[order] = np.minimum(adjusted, 1)
  assert sig.bh_adjust(ps) == pytest.approx(expected.tolist())
  assert sig.bh_adjust(ps) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.20])
  assert sig.bh_adjust([]) == []


def test_beats_only_for_a_separated_pair_in_the_metrics_direction():
  rng = np.random.default_rng(0)
  seeds = range(5)
  good = {s: 0.9 + 0.01 * rng.standard_normal() for s in seeds}
  bad = {s: 0.6 + 0.01 * rng.standard_normal() for s in seeds}
  noise_a = {s: 0.7 + 0.05 * rng.standard_normal() for s in seeds}
  noise_b = {s: 0.7 + 0.05 * rng.standard_normal() for s in seeds}
  pairs, untested = sig.pairwise({'bad': bad, 'good': good}, higher=True)
  assert not untested and len(pairs) == 1
  assert (pairs[0].first, pairs[0].second, pairs[0].winner) == ('good', 'bad', 'good')
  assert pairs[0].difference == pytest.approx(statistics.fmean(good.values())
                                              - statistics.fmean(bad.values()))
  # The same values as a loss: lower is better, so the other row wins.
  pairs, _ = sig.pairwise({'bad': bad, 'good': good}, higher=False)
  assert pairs[0].winner == 'bad'
  pairs, _ = sig.pairwise({'a': noise_a, 'b': noise_b}, higher=True)
  assert pairs[0].winner is None and pairs[0].p_adjusted >= sig.ALPHA


def test_adjustment_can_withdraw_a_win():
  """Three seeds, p under 0.05 on one pair among six whose others are noise: BH raises it
  (p × 6 pairs / rank 1). Each pair is named by its own rows, the better first."""
  a = {0: 0.50, 1: 0.60, 2: 0.70}
  b = {0: 0.45, 1: 0.56, 2: 0.64}  # differences 0.05, 0.04, 0.06: p = 0.013
  rows = {'a': a, 'b': b, 'c': {0: 0.62, 1: 0.50, 2: 0.66}, 'd': {0: 0.70, 1: 0.52, 2: 0.58}}
  pairs, _ = sig.pairwise(rows, higher=True)
  assert len(pairs) == 6 and {frozenset((p.first, p.second)) for p in pairs} == {
      frozenset(pair) for pair in [('a', 'b'), ('a', 'c'), ('a', 'd'), ('b', 'c'), ('b', 'd'),
                                   ('c', 'd')]}
  ab = next(p for p in pairs if {p.first, p.second} == {'a', 'b'})
  assert ab.first == 'a' and ab.p < sig.ALPHA <= ab.p_adjusted and ab.winner is None
  assert ab.p_adjusted == pytest.approx(ab.p * 6)
  alone, _ = sig.pairwise({'a': a, 'b': b}, higher=True)
  assert alone[0].winner == 'a'  # the same pair tested alone is a win


def test_pairs_need_two_shared_seeds():
  pairs, untested = sig.pairwise({'a': {0: 0.9, 1: 0.9}, 'b': {1: 0.5, 2: 0.4}}, True)
  assert pairs == [] and untested == [('a', 'b')]


def test_pairwise_section_prints_beats_only_where_it_holds():
  separated = [_record('gru', 0.9 + 0.01 * s, s) for s in range(3)] + [
      _record('rnn', 0.3 + 0.02 * s, s) for s in range(3)]
  overlapping = [_record('gru', v, s, task='parity') for s, v in enumerate([0.6, 0.8, 0.7])] + [
      _record('rnn', v, s, task='parity') for s, v in enumerate([0.75, 0.65, 0.72])]
  single = [_record('gru', 0.9, task='digits'), _record('rnn', 0.1, task='digits')]
  text = '\n\n'.join(sr.pairwise_section(separated + overlapping + single))
  copy = text.split('### Pairwise: copy')[1].split('###')[0]
  parity = text.split('### Pairwise: parity')[1].split('No pair')[0]
  assert '**gru** beats rnn' in copy
  assert 'beats' not in parity and 'no significant difference' in parity
  assert 'No pair with two or more shared seeds, so no claim: digits.' in text


# ---------------------------------------------------------------------------------------
# Aggregate across tasks.

def test_normalised_score_zero_at_the_baseline_one_at_perfect():
  assert sig.normalised(0.25, 0.25, 'eval/accuracy', True) == 0
  assert sig.normalised(1.0, 0.25, 'eval/accuracy', True) == 1
  assert sig.normalised(0.625, 0.25, 'eval/accuracy', True) == pytest.approx(0.5)
  assert sig.normalised(0.167, 0.167, 'eval/mse', False) == 0
  assert sig.normalised(0.0, 0.167, 'eval/mse', False) == 1
  assert sig.normalised(1e6, 0.167, 'eval/mse', False) == sig.SCORE_FLOOR  # diverged
  # A stated floor (lm's entropy rate) is the perfect value.
  assert sig.normalised(1.28, 2.95, 'eval/bits_per_char', False, perfect=1.28) == 1
  assert sig.normalised(3.0, 1.0, 'eval/score', True) is None  # no perfect value


def _suite(value_of):
  """Three tasks (two bounded, one loss), three seeds each, one row per entry of
  value_of: row -> (task, baseline, perfect, seed) -> value."""
  specs = [('copy', 'eval/accuracy', True, 0.25, 1.0), ('parity', 'eval/accuracy', True, 0.5, 1.0),
           ('adding', 'eval/mse', False, 0.167, 0.0)]
  return [_record(row, f(base, perfect, s), s, task, metric=key, higher=higher, baseline=base)
          for row, f in value_of.items() for task, key, higher, base, perfect in specs
          for s in range(3)]


def test_aggregate_of_a_baseline_row_is_zero_and_of_a_perfect_row_one():
  records = _suite({'base': lambda b, p, s: b, 'perfect': lambda b, p, s: p,
                    'half': lambda b, p, s: (b + p) / 2 + 0.02 * (s - 1)})
  scores = sr.scores(records)
  agg = {row: sig.aggregate(by_task) for row, by_task in scores.items()}
  assert agg['base'].mean == pytest.approx(0) and agg['perfect'].mean == pytest.approx(1)
  assert agg['base'].low == pytest.approx(0) and agg['perfect'].high == pytest.approx(1)
  # The noisy row: its interval contains its mean and is a real interval.
  half = agg['half']
  assert half.low < half.mean < half.high and half.min_seeds == 3
  assert half.mean == pytest.approx(statistics.fmean(
      statistics.fmean(v.values()) for v in scores['half'].values()))
  text = '\n\n'.join(sr.aggregate_section(records))
  assert '| base | 0.000 [0.000, 0.000] | 3 | 3 |' in text
  assert '| perfect | 1.000 [1.000, 1.000] | 3 | 3 |' in text


def test_aggregate_bootstrap_resamples_seeds_within_tasks():
  """The interval is the percentile interval of the mean over tasks of seed-resampled task
  means: redone here by hand with numpy, it agrees to the Monte Carlo error."""
  by_task = {'a': {0: 0.2, 1: 0.5, 2: 0.8}, 'b': {0: 0.9, 1: 0.7, 2: 0.95}, 'c': {0: 0.4}}
  agg = sig.aggregate(by_task)
  rng = np.random.default_rng(1)
  a, b = np.array([0.2, 0.5, 0.8]), np.array([0.9, 0.7, 0.95])
  means = (rng.choice(a, (20000, 3)).mean(1) + rng.choice(b, (20000, 3)).mean(1) + 0.4) / 3
  assert agg.low == pytest.approx(np.percentile(means, 2.5), abs=0.01)
  assert agg.high == pytest.approx(np.percentile(means, 97.5), abs=0.01)
  assert agg.min_seeds == 1
  assert sig.aggregate(by_task) == agg  # seeded: the same on every rebuild
  one_seed = sig.aggregate({'a': {0: 0.3}, 'b': {0: 0.5}})
  assert one_seed.low is None and one_seed.mean == pytest.approx(0.4)


def test_performance_profile_ratios():
  ratios = sig.performance_profile({'x': {'t1': 0.9, 't2': 0.5}, 'y': {'t1': 0.8, 't2': 0.75}})
  assert ratios['x'] == pytest.approx([1.0, 2.0])  # gaps 0.1 vs 0.2; 0.5 vs 0.25
  assert ratios['y'] == pytest.approx([1.0, 2.0])
  assert sig.rho(ratios['x'], 1.0) == 0.5 and sig.rho(ratios['x'], 2.0) == 1.0
  # A perfect score's gap is floored, so the ratios stay finite.
  assert sig.performance_profile({'p': {'t': 1.0}, 'q': {'t': 0.9}})['q'] == [
      pytest.approx(0.1 / sig.GAP_FLOOR)]


def test_profile_plot_is_written_beside_the_other_plots(tmp_path):
  records = _suite({'a': lambda b, p, s: (b + p) / 2, 'b': lambda b, p, s: p})
  written = report.write_plots(tmp_path, records)
  assert [p.name for p in written] == [sr.PROFILE_FILE]
  assert written[0].read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  assert sr.write_plots(tmp_path, records[:3] + records[9:12]) == []  # one task only


# ---------------------------------------------------------------------------------------
# Steps to solve, the budget line, and what old records lack.

def test_steps_to_solve_median_with_never_and_the_count():
  group = [_record('gru', 0.9, s, extra={'steps_to_target': v})
           for s, v in enumerate([300, 500, None])]
  assert sr.steps_text(group) == '500 (2/3)'
  never = [_record('gru', 0.3, s, extra={'steps_to_target': None}) for s in range(3)]
  assert sr.steps_text(never) == 'never (0/3)'
  assert sr.steps_text(group[:1] + never[:2]) == 'never (1/3)'  # most seeds never got there
  text = '\n\n'.join(sr.steps_section(group + [_record('rnn', 0.2)]))
  assert '## Steps to solve' in text and '| gru | 500 (2/3) |' in text
  assert '| rnn |  |' in text  # a record without the field: nothing claimed


def test_budget_line_names_what_was_matched_and_defaults_for_old_records():
  old = [_record('gru', 0.9), _record('rnn', 0.5)]
  assert sr.budget_text(old) == ('Budget matched: parameters (size tiny) and training steps '
                                 '(100); evaluated: the final weights.')
  flops = [_record(a, 0.9, config={'budget': {'size': 'tiny', 'matched': 'flops'},
                                   'eval_weights': 'best_val'}) for a in ('gru', 'rnn')]
  assert sr.budget_text(flops) == ('Budget matched: parameters (size tiny) and training '
                                   'FLOPs; evaluated: the weights best on validation.')
  flops[0]['config']['budget']['flops'] = flops[1]['config']['budget']['flops'] = 2e12
  assert 'and training FLOPs (2e+12);' in sr.budget_text(flops)
  uneven = [_record('gru', 0.9), _record('rnn', 0.5, config={'train': {'steps': 300}})]
  assert 'except copy (100, 300 by architecture)' in sr.budget_text(uneven)
  stopping = [_record(a, 0.9, config={'train': {'steps': 100, 'stop_at_target': True}})
              for a in ('gru', 'rnn')]
  assert '(100), each cell stopping at its task\'s solved threshold on validation;' in \
      sr.budget_text(stopping)
  assert 'some cells stopping' in sr.budget_text(stopping[:1] + old[1:])
  assert sr.budget_text(old) in report.summary_markdown(old).split('## Held-out')[0]


def test_old_records_without_the_new_fields_still_report():
  records = [_record('gru', 0.9, s) for s in range(2)] + [_record('rnn', 0.4, status='error')]
  text = report.summary_markdown(records)
  assert '## Steps to solve' not in text and '## Aggregate across tasks' in text
  assert sr.steps_section(records) == []


# ---------------------------------------------------------------------------------------
# The validation curve beside the training loss.

def test_validation_curve_is_plotted_beside_the_training_loss(tmp_path, monkeypatch):
  train = [[10, 1.0], [20, 0.5]]
  val = [[10, 0.4], [20, 0.8]]
  records = [_record(a, 0.8, s, curves_={'train/loss': train, 'val/accuracy': val})
             for a in ('gru', 'rnn') for s in range(2)]
  assert curves.val_key(records[0]) == 'val/accuracy'
  groups = curves.curve_groups(records, curves.val_key)
  assert groups['copy']['copy']['gru'] == [val, val]
  plt = plots.pyplot()
  labels = []
  savefig = plt.Figure.savefig
  monkeypatch.setattr(plt.Figure, 'savefig', lambda fig, *a, **k: (
      labels.extend(ax.get_ylabel() for ax in fig.axes if ax.get_visible()),
      savefig(fig, *a, **k)))
  written = curves.write_plots(tmp_path, records)
  assert [p.name for p in written] == ['curves_copy.png']
  assert labels == ['training loss', 'validation accuracy']
  # Records from before validation curves: the training loss alone.
  labels.clear()
  curves.write_plots(tmp_path, [dict(r, curves={'train/loss': train}) for r in records])
  assert labels == ['training loss']


def test_tuned_records_say_so_and_are_not_labelled_as_variants():
  from archbench.benchmarks.results import tables
  settings = lambda dropout: {'from': 'tuned', 'tuning': 'DIR', 'settings': {  # noqa: E731
      'train': {'lr': 1e-3}, 'arch': {'dropout': dropout}}}
  tuned = [_record('gru', 0.9, config={'arch_overrides': {'dropout': 0.1, 'hidden': 8},
                                        'settings': settings(0.1)}),
           _record('gru', 0.8, task='adding', config={'arch_overrides': {'dropout': 0.2,
                                                                         'hidden': 16},
                                                       'settings': settings(0.2)})]
  row, _ = tables.row_column_labels(tuned)
  # The tuned dropout is the GRU's own treatment; the hidden size it was not tuned on is
  # a variant, and named.
  assert [row(r) for r in tuned] == ['gru (hidden=8)', 'gru (hidden=16)']
  assert "settings: each pair's selection by `archbench tune`" in sr.budget_text(tuned)
  assert 'some pairs' in sr.budget_text(tuned[:1] + [_record('rnn', 0.5)])
  assert 'archbench tune' not in sr.budget_text([_record('rnn', 0.5)])
