"""archbench's ListOps generator at Long Range Arena's settings: the length window, depth and
argument limits, labels against an evaluator written here, and the distributions of
benchmarks/reproductions/_lra_stats.py against those measured from LRA's own generator, and
tools/lra_stats.py, which prints them."""
import importlib.util
import pathlib
import statistics

import numpy as np
import pytest

from archbench.benchmarks.reproductions import _lra_stats as lra_stats
from archbench.data import listops

N = 2000  # about 6 s to generate at LRA's lengths
LRA = lra_stats.LRA_GENERATOR_STATS
WORDS = ['<pad>', *'0123456789', '[MIN', '[MAX', '[MED', '[SM', ']']
# LRA's to_value: MED is int(np.median), i.e. the mean of the middle two, truncated.
OPERATORS = {'[MIN': min, '[MAX': max, '[MED': lambda a: int(statistics.median(a)),
             '[SM': lambda a: sum(a) % 10}


def _evaluate(words):
  """Recursive descent: (value, depth with LRA's counting, [argument count per operator],
  [depth of each digit])."""
  pos, arg_counts, leaf_depths = 0, [], []

  def node(depth):
    nonlocal pos
    word = words[pos]
    pos += 1
    if word not in OPERATORS:
      leaf_depths.append(depth)
      return int(word), depth
    args, deepest = [], depth
    while words[pos] != ']':
      value, d = node(depth + 1)
      args.append(value)
      deepest = max(deepest, d)
    pos += 1
    arg_counts.append(len(args))
    return OPERATORS[word](args), deepest

  value, depth = node(1)
  assert pos == len(words), 'tokens after a complete expression'
  return value, depth, arg_counts, leaf_depths


@pytest.fixture(scope='module')
def sample():
  return listops.generate(N, data_seed=0, **lra_stats.LRA_TASK_PARAMS)


@pytest.fixture(scope='module')
def parsed(sample):
  """Every expression evaluated: per-expression lists (length, label, value, depth) and
  the argument counts and digit depths of all of them together."""
  out = {k: [] for k in ('length', 'label', 'value', 'depth', 'arg_counts', 'leaf_depths')}
  for tokens, label in zip(sample['tokens'], sample['labels']):
    n = int(np.count_nonzero(tokens))
    assert np.all(tokens[:n] != listops.PAD) and np.all(tokens[n:] == listops.PAD)
    value, depth, arg_counts, leaf_depths = _evaluate([WORDS[t] for t in tokens[:n]])
    for key, v in (('length', n), ('label', int(label)), ('value', value), ('depth', depth)):
      out[key].append(v)
    out['arg_counts'] += arg_counts
    out['leaf_depths'] += leaf_depths
  return out


def test_limits_and_labels_at_lra_settings(sample, parsed):
  assert sample['tokens'].shape == (N, 1999)
  assert len({bytes(r) for r in sample['tokens']}) == N  # distinct, as LRA's set
  lengths = parsed['length']
  assert 501 <= min(lengths) <= 505 and 1950 <= max(lengths) <= 1999  # LRA: 500 < n < 2000
  assert parsed['value'] == parsed['label']
  assert max(parsed['depth']) == 10
  assert set(parsed['arg_counts']) == set(range(2, 11))
  assert set(parsed['label']) == set(range(10))


def test_statistics_agree_with_the_evaluator(sample, parsed):
  stats = lra_stats.listops_statistics(sample['tokens'], sample['labels'])
  depths, leaves = parsed['depth'], parsed['leaf_depths']
  assert stats['depth']['max'] == max(depths)
  assert stats['depth']['mean'] == pytest.approx(np.mean(depths), abs=1e-3)
  assert stats['leaf_depth']['mean'] == pytest.approx(np.mean(leaves), abs=1e-3)
  assert stats['leaf_depth']['shares'] == {
      d: pytest.approx(leaves.count(d) / len(leaves), abs=1e-4) for d in set(leaves)}
  assert stats['args_per_operator'] == pytest.approx(np.mean(parsed['arg_counts']), abs=1e-3)
  assert stats['length']['mean'] == pytest.approx(np.mean(parsed['length']), abs=0.05)


def test_distributions_match_lra_generator(sample):
  """Against LRA's 20,000. Tolerances are 3-5 standard errors of the difference at
  N = 2,000 (measured over six other seeds: a class share near 0.17 varies by 0.009, the
  mean length by 9 tokens, the mean digit depth by 0.005, arguments per operator by
  0.006), so a real departure of the generator (another operator probability, argument
  range, window or operator semantics) fails while sampling noise does not; the fixed seed
  keeps the outcome deterministic."""
  stats = lra_stats.listops_statistics(sample['tokens'], sample['labels'])
  assert stats['majority_class'] in (0, 9)  # LRA: 0 and 9 share the top (0.170, 0.167)
  assert stats['majority_share'] == pytest.approx(LRA['majority_share'], abs=0.03)
  for ours, theirs in zip(stats['label_shares'], LRA['label_shares']):
    assert ours == pytest.approx(theirs, abs=0.03)
  assert stats['length']['mean'] == pytest.approx(LRA['length']['mean'], abs=30)
  assert stats['length']['median'] == pytest.approx(LRA['length']['median'], abs=40)
  assert stats['depth']['shares'] == LRA['depth']['shares'] == {10: 1.0}
  assert stats['leaf_depth']['mean'] == pytest.approx(LRA['leaf_depth']['mean'], abs=0.02)
  assert stats['args_per_operator'] == pytest.approx(LRA['args_per_operator'], abs=0.025)


def test_the_tool_prints_both_columns(capsys):
  """tools/lra_stats.py (not installed: loaded by path) prints the table of both
  generators' statistics."""
  path = pathlib.Path(__file__).resolve().parents[1] / 'tools' / 'lra_stats.py'
  spec = importlib.util.spec_from_file_location('lra_stats_tool', path)
  tool = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(tool)
  assert tool.main(['--num', '40', '--seed', '3']) == 0
  out = capsys.readouterr().out
  assert 'N = 40, data_seed = 3' in out and lra_stats.LRA_COMMIT[:7] in out
  assert '| statistic | archbench | LRA |' in out
  assert f'| expressions | 40 | {LRA["num_examples"]} |' in out


def test_root_operator_rule_fitted_on_train_scored_on_test():
  """The lookup by first token: the label most common under each root in training; a root
  never seen in training falls back to the majority label; left padding finds the root too."""
  op = lambda name: listops.OPERATOR_BASE + listops.OPERATORS.index(name)
  pad = listops.PAD
  train = np.array([[op('[MAX'), 5], [op('[MAX'), 6], [op('[MIN'), 7], [op('[MIN'), 8],
                    [op('[MIN'), 9]])
  labels = np.array([9, 9, 0, 0, 3])
  test = np.array([[op('[MAX'), pad], [pad, op('[MIN')], [op('[SM'), 1], [op('[MIN'), 2]])
  # MAX -> 9 (right), MIN -> 0 (right, found after a left pad), SM unseen -> 0 (wrong),
  # MIN -> 0 (wrong: label 4).
  assert listops.root_operator_accuracy(train, labels, test, np.array([9, 0, 4, 4])) == 0.5


def test_the_task_reports_its_root_operator_baseline(sample):
  """At LRA's settings the rule scores about LRA's Transformer (0.3637), and much more
  than the majority class (0.17): the strongest trivial baseline a model must beat."""
  tokens, labels = sample['tokens'], sample['labels']
  half = len(labels) // 2
  idx = np.arange(len(labels))
  baselines = listops.listops_baselines(tokens.astype(np.int32), labels.astype(np.int32),
                                        idx[:half], idx[half:])
  assert 0.32 <= baselines['root_operator/accuracy'] <= 0.42
  assert baselines['root_operator/accuracy'] > baselines['eval/accuracy'] + 0.1
