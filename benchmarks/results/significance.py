"""Uncertainty and significance over seeds: what a table may claim from a handful of runs.

Every number here is a function of the records' values alone (scipy.stats does the
statistics). The methods, and why:

* Interval of a cell: the mean over its ok seeds with a two-sided 95% Student-t interval,
  mean ± t(0.975, n−1)·s/√n. With 3 seeds a bootstrap has 10 distinct resamples and
  understates the spread; the t interval at least widens honestly (t(0.975, 2) = 4.30).
  It is clipped to the values the metric can take (an accuracy's [0, 1], a loss's ≥ 0). One
  seed has no interval, and is marked SINGLE_SEED_MARK wherever it is shown.
* "X beats Y" on a task: a paired t-test (scipy.stats.ttest_rel) over the seeds both rows
  ran. Pairing is right because a seed fixes the task's data stream and held-out set for
  every architecture, so the difference per seed removes that shared noise. Not Wilcoxon:
  the exact signed-rank test's smallest two-sided p with n pairs is 2/2^n, 0.25 with 3 seeds
  and 0.0625 with 5, so it could never reach 0.05 at the seeds suites run. The p-values of a
  task's pairs are adjusted together with Benjamini–Hochberg
  (scipy.stats.false_discovery_control), and a win is claimed only when the adjusted p is
  below ALPHA, in the direction the task's metric is better.
* Aggregate across tasks: a baseline-normalised score per (row, task, seed) (`normalised`:
  0 = the task's strongest trivial baseline, 1 = perfect or the task's stated floor),
  averaged over seeds and then over
  the tasks a row ran, with a 95% percentile bootstrap (scipy.stats.bootstrap) that
  resamples seeds within each task. Tasks are the suite's fixed choice, not a sample, so
  only the seeds are resampled (the stratified bootstrap of Agarwal et al. 2021, rliable).
* Performance profile (Dolan & Moré 2002): per task, each row's remaining gap to perfect
  (1 − score) divided by the best row's; ρ(τ) is the fraction of its tasks a row is within
  a factor τ of the best on.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import warnings

import numpy as np
from scipy import stats

from archbench.benchmarks.results import metrics

CONFIDENCE = 0.95
ALPHA = 0.05
SINGLE_SEED_MARK = '‡'
SINGLE_SEED_NOTE = f'{SINGLE_SEED_MARK} one seed: no interval, and no test can use it'
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0  # the aggregate's interval is the same on every rebuild of a report
# A loss this many times the baseline's (or worse) scores -1: one diverged seed must not
# outweigh every other task in a mean.
SCORE_FLOOR = -1.0
# Gaps to perfect below this fraction of the baseline's count as perfect in the profile,
# whose ratios divide by the best gap (1/1000 of held-out examples is 0.00114 of chance's
# gap on a 8-class task, so a real difference stays above it).
GAP_FLOOR = 1e-4


# ---------------------------------------------------------------------------------------
# Intervals over seeds.

@dataclasses.dataclass(frozen=True)
class Interval:
  """mean of n values with its interval; low and high are None for one value."""
  mean: float
  low: float | None
  high: float | None
  n: int


def t_interval(values, confidence: float = CONFIDENCE,
               bounds: tuple[float, float] = (-math.inf, math.inf)) -> Interval:
  """The mean and its two-sided Student-t interval, clipped to `bounds`, the values the
  metric can take (the true mean lies inside them, so clipping keeps the coverage). No
  interval for one value; a point for identical values, where scipy would divide by a zero
  spread."""
  values = [float(v) for v in values]
  n = len(values)
  if n == 0:
    raise ValueError('no values')
  mean = statistics.fmean(values)
  if n == 1:
    return Interval(mean, None, None, 1)
  sem = statistics.stdev(values) / math.sqrt(n)
  if sem == 0:
    return Interval(mean, mean, mean, n)
  low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
  return Interval(mean, max(float(low), bounds[0]), min(float(high), bounds[1]), n)


def interval_text(values, fmt: str = '{:.3g}', key: str | None = None) -> str:
  """'mean [low, high] n=3' (clipped to the range of the metric `key`), 'mean ‡' for one
  value, '' for none."""
  if not values:
    return ''
  iv = t_interval(values, bounds=metrics.value_range(key) if key else (-math.inf, math.inf))
  if iv.low is None:
    return f'{fmt.format(iv.mean)} {SINGLE_SEED_MARK}'
  return f'{fmt.format(iv.mean)} [{fmt.format(iv.low)}, {fmt.format(iv.high)}] n={iv.n}'


# ---------------------------------------------------------------------------------------
# Pairwise tests within a task.

@dataclasses.dataclass(frozen=True)
class Pair:
  """Rows `first` and `second` of one task over `n` shared seeds, `first` the better by
  mean; difference = mean(first − second); p from the paired t-test, p_adjusted by
  Benjamini–Hochberg over the task's tested pairs; winner the row that significantly
  beats the other, else None."""
  first: str
  second: str
  n: int
  difference: float
  p: float
  p_adjusted: float
  winner: str | None


def seed_values(group, key: str) -> dict[int, float]:
  """seed -> value of `key` over a cell's ok records (a seed recorded twice: its mean)."""
  by_seed: dict[int, list[float]] = {}
  for r in group:
    value = (r.get('metrics') or {}).get(key)
    if r.get('status') == 'ok' and isinstance(value, (int, float)) and math.isfinite(value):
      by_seed.setdefault(r['seed'], []).append(float(value))
  return {s: statistics.fmean(v) for s, v in by_seed.items()}


def paired_p(a, b) -> float:
  """Two-sided p of the paired t-test of a against b. Identical differences have no spread
  for ttest_rel to divide by: p = 1 when they are all zero, 0 when they all agree on a
  non-zero difference (an infinite t)."""
  diffs = np.asarray(a, float) - np.asarray(b, float)
  if np.ptp(diffs) == 0:
    return 1.0 if diffs[0] == 0 else 0.0
  return float(stats.ttest_rel(a, b).pvalue)


def bh_adjust(ps) -> list[float]:
  """Benjamini–Hochberg adjusted p-values (the false discovery rate of a task's pairs)."""
  if not len(ps):
    return []
  return [float(p) for p in stats.false_discovery_control(np.asarray(ps, float), method='bh')]


def pairwise(by_row: dict[str, dict[int, float]], higher: bool,
             alpha: float = ALPHA) -> tuple[list[Pair], list[tuple[str, str]]]:
  """(the tested pairs, the pairs with fewer than two shared seeds) of one task's rows,
  each row seed -> value, in row order."""
  rows = list(by_row)
  tested, untested = [], []
  for i, row in enumerate(rows):
    for other in rows[i + 1:]:
      shared = sorted(set(by_row[row]) & set(by_row[other]))
      if len(shared) < 2:
        untested.append((row, other))
        continue
      a, b = row, other
      va, vb = [by_row[a][s] for s in shared], [by_row[b][s] for s in shared]
      diff = statistics.fmean(va) - statistics.fmean(vb)
      if (diff < 0) == higher:  # the better row by mean first
        a, b, va, vb, diff = b, a, vb, va, -diff
      tested.append((a, b, len(shared), diff, paired_p(va, vb)))
  adjusted = bh_adjust([t[4] for t in tested])
  pairs = [Pair(a, b, n, diff, p, q, a if q < alpha and diff != 0 else None)
           for (a, b, n, diff, p), q in zip(tested, adjusted)]
  return pairs, untested


# ---------------------------------------------------------------------------------------
# Baseline-normalised score and the aggregate across tasks.

def normalised(value: float, baseline: float, key: str, higher: bool,
               perfect: float | None = None) -> float | None:
  """(v − b)/(p − b): 0 at the strongest trivial baseline b, 1 at the perfect value p, which
  is the task's stated floor (metrics.FLOOR: lm's entropy rate) where it has one, else 1
  for a bounded metric where higher is better and 0 for a lower-is-better one (losses, MSE,
  bits/char and error rates are ≥ 0): accuracy (v − b)/(1 − b), a loss (b − v)/b, the
  fraction of the baseline's error removed. Scores are floored at SCORE_FLOOR, so that one
  diverged seed, whose loss can be 1e6 times the baseline's, does not outweigh every other
  task in a mean. Unbounded higher-is-better metrics have no perfect value: None, and they
  stay out of the aggregate."""
  if perfect is None:
    if higher and not metrics.is_bounded(key):
      return None
    perfect = 1.0 if higher else 0.0
  if (perfect - baseline) * (1 if higher else -1) <= 0:
    return None  # the baseline is already perfect: nothing to normalise by
  return max((value - baseline) / (perfect - baseline), SCORE_FLOOR)


def strongest_baseline(group, key: str, higher: bool) -> float | None:
  """The strongest trivial baseline of `key` in a cell's records."""
  for r in group:
    best = metrics.strongest(metrics.trivial_baselines(r.get('metrics') or {}, key), higher)
    if best is not None:
      return best[1]
  return None


@dataclasses.dataclass(frozen=True)
class Aggregate:
  """A row's mean normalised score over its tasks, with its bootstrap interval (None when
  every task has one seed), the tasks' means and the fewest seeds of a task."""
  mean: float
  low: float | None
  high: float | None
  per_task: dict[str, float]
  min_seeds: int


def aggregate(by_task: dict[str, dict[int, float]], seed: int = BOOTSTRAP_SEED) -> Aggregate:
  """The mean over tasks of each task's mean over seeds, with a percentile bootstrap that
  resamples the seeds within each task (tasks with one seed stay fixed)."""
  per_task = {t: statistics.fmean(v.values()) for t, v in by_task.items()}
  mean = statistics.fmean(per_task.values())
  varied = [np.array(list(v.values())) for v in by_task.values() if len(v) > 1]
  fixed = sum(per_task[t] for t, v in by_task.items() if len(v) == 1)
  count = len(by_task)
  low = high = None
  if varied:
    def statistic(*samples, axis=-1):
      return (fixed + sum(np.mean(s, axis=axis) for s in samples)) / count
    with warnings.catch_warnings():  # identical seeds: a degenerate (point) interval
      warnings.simplefilter('ignore')
      result = stats.bootstrap(tuple(varied), statistic, n_resamples=BOOTSTRAP_RESAMPLES,
                               confidence_level=CONFIDENCE, method='percentile',
                               vectorized=True, rng=np.random.default_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if math.isnan(low) or math.isnan(high):
      low = high = mean
  return Aggregate(mean, low, high, per_task, min(len(v) for v in by_task.values()))


def performance_profile(by_row: dict[str, dict[str, float]]) -> dict[str, list[float]]:
  """row -> its sorted performance ratios over the tasks it ran: on each task, its gap to
  perfect (1 − score, at least GAP_FLOOR) over the smallest gap among the rows that ran
  it. ρ_row(τ) = the fraction of its ratios ≤ τ."""
  gaps: dict[str, dict[str, float]] = {}
  for row, per_task in by_row.items():
    for task, score in per_task.items():
      gaps.setdefault(task, {})[row] = max(1 - score, GAP_FLOOR)
  out: dict[str, list[float]] = {row: [] for row in by_row}
  for by in gaps.values():
    best = min(by.values())
    for row, gap in by.items():
      out[row].append(gap / best)
  return {row: sorted(ratios) for row, ratios in out.items()}


def rho(ratios: list[float], tau: float) -> float:
  """The fraction of the ratios within a factor tau of the best."""
  return sum(r <= tau for r in ratios) / len(ratios) if ratios else 0.0
