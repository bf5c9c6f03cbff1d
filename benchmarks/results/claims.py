"""The claims study (`archbench claims`): what people believe about CNNs, RNNs and
Transformers, each belief judged `holds`, `fails` or `depends` from a run's records.

A claim's spec is plain JSON data (built by benchmarks/claims/, saved in claims.json
before its cells run), so a run is re-judged from its records alone (`archbench report
DIR`), without JAX. The spec holds the claim as usually stated and where that wording
comes from, the experiment in words, the cells that test it (their digests: a record
belongs to a claim by its cell_id), the statistic and the decision rule with its
threshold, or the reason archbench cannot test it.

Decision rules (one kind each, built by `compare`, `trend` and `beats_baseline`), judged
per condition (a named subset of the claim's records: a task, a length, a permutation),
each condition with the outcome the claim predicts there (`expect`):

- compare: `winner` beats every model of `others` on `metric`: the paired t-test over
  the seeds both ran (significance.paired_p), its p Benjamini-Hochberg adjusted over every
  test of the claim, below ALPHA in the winner's favour, and the mean difference beyond
  `margin` (absolute) or `factor` (a ratio, for losses and times).
- trend: `metric` grows (or falls) with `x` (a task parameter, a backbone field or a
  perf figure): per seed, the least-squares slope of metric on x (or on log2 x); the
  slopes' one-sample t-test (or, with `versus`, the paired t-test of one model's slopes
  against another's), BH adjusted over the claim's tests.
- beats_baseline: a model beats a task's named trivial baseline (the records'
  baseline/<name>/<metric>, e.g. persistence): the paired t-test over seeds of the model's
  value against the baseline's on the same seed's held-out set. `quantifier` 'any' or
  'all' of the models.

A condition is `supported` when its test succeeds; the claim's verdict compares that with
its predictions: every condition as predicted -> `holds`; none -> `fails`; some ->
`depends`, with the conditions where it holds and where it fails. A model with fewer than
MIN_SEEDS ok seeds in a condition, or a condition without records, gives `no verdict`
(never a guess), and a claim archbench cannot test says `not testable` with its reason.
`fails` says why: the difference is significant the other way, or not significant at the
seeds run (the claim is then not supported at this budget, which is not proof of the
opposite).
"""
from __future__ import annotations

import json
import math
import pathlib
import statistics
import textwrap
from typing import Any

import numpy as np

from archbench.benchmarks.core import UsageError
from archbench.benchmarks.results import markup, metrics, significance
from archbench.benchmarks.results import records as records_lib
from archbench.common import files

FILE_MD, FILE_JSON, FILE_TEX = 'claims.md', 'claims.json', 'claims.tex'
HOLDS, FAILS, DEPENDS = 'holds', 'fails', 'depends'
NO_VERDICT, NOT_TESTABLE = 'no verdict', 'not testable'
VERDICTS = (HOLDS, FAILS, DEPENDS, NO_VERDICT, NOT_TESTABLE)
MIN_SEEDS = 3  # the fair-fights protocol's: an interval and a paired test need them
ALPHA = significance.ALPHA
KINDS = ('compare', 'edge_lost', 'trend', 'beats_baseline')
SIZES = ('cpu', 'full')
LOG_SPAN = 50  # a bar plot's means spanning more than this factor get a log axis


# ---------------------------------------------------------------------------------------
# Building a claim's decision rule (what benchmarks/claims/ files call).

def condition(label: str, expect: bool = True, *, metric: str | None = None,
              higher: bool | None = None, x: str | None = None, **where) -> dict[str, Any]:
  """A named subset of the claim's records and the outcome the claim predicts there.
  `where` keys: task, arch, or 'task.<param>', 'arch.<field>', 'train.<field>',
  'budget.<field>' of the records' resolved config (e.g. **{'task.length': 64},
  **{'budget.matched': 'flops'}). `metric` (and its direction
  `higher`): this condition's own, in place of the rule's (compare only: e.g. step time
  in one condition, peak memory in the next). `x`: a trend's own x in this condition
  (e.g. parameters in one, training FLOPs in the next)."""
  out = {'label': label, 'expect': bool(expect), 'where': dict(where)}
  if metric is not None:
    out['metric'] = metric
  if x is not None:
    out['x'] = x
  if higher is not None:
    out['higher'] = _direction(higher)
  return out


def _direction(higher: bool | None) -> bool | None:
  if higher not in (None, True, False):
    raise ValueError(f'higher: True, False or None (the metric\'s own), not {higher!r}')
  return higher


def compare(metric: str, winner: str, others, conditions, *, higher: bool | None = None,
            margin: float = 0.0, factor: float | None = None,
            rows: dict[str, dict] | None = None) -> dict[str, Any]:
  """`winner` (an architecture, or several: each of them) beats each of `others` on
  `metric` in each condition. `rows`: label -> the records it stands for, where the
  models compared are not architectures by name (e.g. {'pooled': {'arch': 'cnn',
  'arch.pool': True}, 'unpooled': {...}}); a name without a row is that architecture."""
  out = {'kind': 'compare', 'metric': metric,
         'winner': [winner] if isinstance(winner, str) else list(winner),
         'others': list(others), 'conditions': list(conditions),
         'higher': _direction(higher), 'margin': float(margin), 'factor': factor}
  if rows:
    out['rows'] = {label: dict(where) for label, where in rows.items()}
  return out


def edge_lost(metric: str, winner, others, kept: dict, lost: dict, *,
              higher: bool | None = None) -> dict[str, Any]:
  """`winner` beats each of `others` where the claim's mechanism is at work (`kept`), and
  its edge (winner minus other, per seed) is significantly smaller where it is not
  (`lost`): a paired t-test of the per-seed edges, kept against lost. Both conditions
  are predicted `shown`. Not beating the others in `lost` is not enough: that can be a
  lack of seeds, while a smaller edge is measured."""
  kept, lost = dict(kept, expect=True), dict(lost, expect=True)
  return {'kind': 'edge_lost', 'metric': metric,
          'winner': [winner] if isinstance(winner, str) else list(winner),
          'others': list(others), 'conditions': [kept, lost], 'higher': _direction(higher),
          'margin': 0.0, 'factor': None}


def trend(metric: str, x: str, archs, conditions, *, increasing: bool = True,
          log_x: bool = False, versus: tuple[str, str] | None = None,
          higher: bool | None = None) -> dict[str, Any]:
  """`metric` increases (or not) with `x` for every model of `archs`; with `versus`
  (a, b): a's slope is more `increasing` than b's (a paired test of per-seed slopes)."""
  if versus is not None and len(versus) != 2:
    raise ValueError('versus: two architectures (a, b)')
  return {'kind': 'trend', 'metric': metric, 'x': x, 'archs': list(archs),
          'conditions': list(conditions), 'increasing': bool(increasing),
          'log_x': bool(log_x), 'versus': list(versus) if versus else None,
          'higher': _direction(higher)}


def beats_baseline(metric: str, archs, baseline: str, conditions, *,
                   quantifier: str = 'any', higher: bool | None = None) -> dict[str, Any]:
  """`quantifier` ('any' or 'all') of `archs` beats the trivial baseline `baseline`
  (records' baseline/<baseline>/<name of metric>) on `metric`."""
  if quantifier not in ('any', 'all'):
    raise ValueError(f'quantifier {quantifier!r}: any or all')
  return {'kind': 'beats_baseline', 'metric': metric, 'archs': list(archs),
          'baseline': baseline, 'conditions': list(conditions), 'quantifier': quantifier,
          'higher': _direction(higher)}


def spec(*, name: str, text: str, source: str, family: str, experiment: str,
         statistic: str, rule: dict | None, threshold: str, untestable: str | None = None,
         cells: list[str] = (), size: str = 'cpu', runtime: str = '') -> dict[str, Any]:
  """One claim as judged: its wording and source, the experiment in words, its cells'
  digests at `size`, the statistic, the rule (None where untestable) and the threshold
  in words."""
  if rule is None and not untestable:
    raise ValueError(f'claim {name}: a rule, or the reason it cannot be tested')
  if rule is not None and rule.get('kind') not in KINDS:
    raise ValueError(f'claim {name}: rule kind {rule.get("kind")!r}; valid: {", ".join(KINDS)}')
  return {'name': name, 'text': text, 'source': source, 'family': family,
          'experiment': experiment, 'statistic': statistic, 'rule': rule,
          'threshold': threshold, 'untestable': untestable, 'cells': list(cells),
          'size': size, 'runtime': runtime}


def plain(value):
  """A rule as plain JSON data (tuples as lists)."""
  return json.loads(json.dumps(value, default=list))


# ---------------------------------------------------------------------------------------
# Reading records.

# Figures a record implies but does not hold: the training FLOPs it spent (analytic
# FLOPs of one step times the steps it trained; at stop_at_target, fewer than planned).
DERIVED = {
    'perf/train_flops': lambda r: _product((r.get('perf') or {}).get('flops_per_step'),
                                           (r.get('metrics') or {}).get('train/steps')),
}


def _product(a, b):
  return a * b if all(isinstance(v, (int, float)) and not isinstance(v, bool)
                      for v in (a, b)) else None


def difference(a: str, b: str) -> str:
  """The key of `a` minus `b` per record (e.g. the train-validation gap: 'val/loss -
  train/loss'), a metric as the rules read it."""
  return f'{a}{DIFFERENCE}{b}'


DIFFERENCE = ' - '


def value(record: dict, key: str) -> float | None:
  """A record's `key`: a metric, 'perf/<figure>' (step_ms, params, ...), a DERIVED
  figure, or `difference(a, b)`."""
  if DIFFERENCE in key:
    a, b = (value(record, k) for k in key.split(DIFFERENCE, 1))
    return None if a is None or b is None else a - b
  if key in DERIVED:
    found = DERIVED[key](record)
  elif key.startswith('perf/'):
    found = (record.get('perf') or {}).get(key[5:])
  else:
    found = (record.get('metrics') or {}).get(key)
  if isinstance(found, bool) or not isinstance(found, (int, float)):
    return None
  return float(found) if math.isfinite(found) else None


def setting(record: dict, path: str):
  """'task', 'arch', 'seed', or a resolved config value: 'task.<p>', 'arch.<field>',
  'train.<field>'; 'perf/<figure>' and metrics through `value`."""
  if path in ('task', 'arch', 'seed', 'size'):
    return record.get(path)
  if path.startswith('perf/') or '/' in path:
    return value(record, path)
  section, _, field = path.partition('.')
  return ((record.get('config') or {}).get(section) or {}).get(field)


def _matches(record: dict, where: dict) -> bool:
  return all(setting(record, k) == v for k, v in where.items())


def _spec_of(records: list[dict]) -> dict:
  return next((metrics.task_spec(r) for r in records if metrics.task_spec(r)), {})


def _higher(rule: dict, records: list[dict]) -> bool:
  if rule.get('higher') is not None:
    return rule['higher']
  return metrics.higher_is_better(rule['metric'], _spec_of(records))


def _row_filter(rule: dict, name: str) -> dict:
  return (rule.get('rows') or {}).get(name) or {'arch': name}


def seeds_of(records: list[dict], arch: str | dict, where: dict, key: str) -> dict[int, float]:
  """seed -> value of `key` (a metric or perf/<figure>) over the ok records of `arch` (an
  architecture's name, or a row's filter) matching `where` (a seed recorded twice, or at
  several points: the mean)."""
  row = {'arch': arch} if isinstance(arch, str) else arch
  out: dict[int, list[float]] = {}
  for r in records:
    if r.get('status') == 'ok' and _matches(r, row) and _matches(r, where):
      v = value(r, key)
      if v is not None:
        out.setdefault(r['seed'], []).append(v)
  return {s: statistics.fmean(v) for s, v in out.items()}


def _interval(values, key: str | None = None) -> dict[str, Any]:
  """Mean and 95% t-interval, clipped to the values `key` can take (an accuracy's [0, 1])."""
  bounds = metrics.value_range(key) if key and not key.startswith('perf/') else (
      -math.inf, math.inf)
  iv = significance.t_interval(list(values), bounds=bounds)
  return {'mean': iv.mean, 'low': iv.low, 'high': iv.high, 'n': iv.n}


# ---------------------------------------------------------------------------------------
# Judging.

def _better(diff: float, higher: bool) -> bool:
  return diff > 0 if higher else diff < 0


def _judge_compare(rule, records, higher):
  """Evidence rows, tests (unadjusted), and per condition what is missing."""
  rows, tests, missing = [], [], []
  for cond in rule['conditions']:
    metric = cond.get('metric') or rule['metric']
    by_arch = {a: seeds_of(records, _row_filter(rule, a), cond['where'], metric)
               for a in [*rule['winner'], *rule['others']]}
    for a, seeds in by_arch.items():
      if seeds:
        rows.append({'condition': cond['label'], 'arch': a, 'metric': metric,
                     **_interval(seeds.values(), metric), 'seeds': sorted(seeds)})
      if len(seeds) < MIN_SEEDS:
        missing.append(f'{a} in {cond["label"]}: {len(seeds)} ok seed(s), {MIN_SEEDS} needed')
    for winner, other in ((w, o) for w in rule['winner'] for o in rule['others']):
      win = by_arch[winner]
      shared = sorted(set(win) & set(by_arch[other]))
      if len(shared) < MIN_SEEDS:
        continue
      a, b = [win[s] for s in shared], [by_arch[other][s] for s in shared]
      diff = statistics.fmean(a) - statistics.fmean(b)
      ratio = (statistics.fmean(a) / statistics.fmean(b)) if statistics.fmean(b) else None
      test = {'condition': cond['label'], 'a': winner, 'b': other, 'n': len(shared),
              'difference': diff, 'ratio': ratio, 'p': significance.paired_p(a, b)}
      if 'metric' in cond:  # its own metric, its own direction
        test['higher'] = cond['higher'] if cond.get('higher') is not None else \
            metrics.higher_is_better(metric, _spec_of(records))
      tests.append(test)
  return rows, tests, missing


def _judge_edge(rule, records, higher):
  """compare's rows and tests in the `kept` condition; in `lost`, per (winner, other) the
  paired test of the per-seed edge there against the edge in `kept`."""
  kept, lost = rule['conditions']
  rows, tests, missing = _judge_compare({**rule, 'conditions': [kept]}, records, higher)
  more_rows, _, more_missing = _judge_compare({**rule, 'conditions': [lost]}, records, higher)
  rows += more_rows
  missing += more_missing
  for winner, other in ((w, o) for w in rule['winner'] for o in rule['others']):
    edge = {}
    for cond in (kept, lost):
      w = seeds_of(records, _row_filter(rule, winner), cond['where'], rule['metric'])
      o = seeds_of(records, _row_filter(rule, other), cond['where'], rule['metric'])
      edge[cond['label']] = {s: w[s] - o[s] for s in set(w) & set(o)}
    shared = sorted(set(edge[kept['label']]) & set(edge[lost['label']]))
    if len(shared) < MIN_SEEDS:
      continue
    a = [edge[kept['label']][s] for s in shared]
    b = [edge[lost['label']][s] for s in shared]
    rows.append({'condition': lost['label'], 'arch': f'edge {winner}−{other}, {kept["label"]}',
                 **_interval(a), 'seeds': shared})
    rows.append({'condition': lost['label'], 'arch': f'edge {winner}−{other}, {lost["label"]}',
                 **_interval(b), 'seeds': shared})
    tests.append({'condition': lost['label'], 'a': f'edge {winner}−{other} on {kept["label"]}',
                  'b': f'on {lost["label"]}', 'n': len(shared),
                  'difference': statistics.fmean(a) - statistics.fmean(b), 'ratio': None,
                  'p': significance.paired_p(a, b)})
  return rows, tests, missing


def _slope(xs, ys, log_x) -> float:
  x = np.log2(np.asarray(xs, float)) if log_x else np.asarray(xs, float)
  return float(np.polyfit(x, np.asarray(ys, float), 1)[0])


def _seed_slopes(records, arch, where, rule) -> tuple[dict[int, float], list[dict]]:
  """seed -> slope of metric on x over the arch's ok records in the condition, and the
  points (x, mean, interval) for the evidence."""
  points: dict[int, dict[float, list[float]]] = {}
  by_x: dict[float, dict[int, float]] = {}
  for r in records:
    if r['arch'] != arch or r.get('status') != 'ok' or not _matches(r, where):
      continue
    x, y = setting(r, rule['x']), value(r, rule['metric'])
    if isinstance(x, (int, float)) and y is not None:
      points.setdefault(r['seed'], {}).setdefault(float(x), []).append(y)
  slopes = {}
  for seed, xy in points.items():
    for x, ys in xy.items():
      by_x.setdefault(x, {})[seed] = statistics.fmean(ys)
    if len(xy) >= 2:
      xs = sorted(xy)
      slopes[seed] = _slope(xs, [statistics.fmean(xy[x]) for x in xs], rule['log_x'])
  evidence = [{'x': x, **_interval(v.values(), rule['metric']), 'seeds': sorted(v)}
              for x, v in sorted(by_x.items())]
  return slopes, evidence


def _x(rule: dict, cond: dict) -> str:
  return cond.get('x') or rule['x']


def _judge_trend(rule, records, higher):
  rows, tests, missing = [], [], []
  for cond in rule['conditions']:
    slopes = {}
    for a in rule['archs']:
      s, evidence = _seed_slopes(records, a, cond['where'], {**rule, 'x': _x(rule, cond)})
      slopes[a] = s
      rows += [{'condition': cond['label'], 'arch': a, 'point': e['x'], **e} for e in evidence]
      if s:
        rows.append({'condition': cond['label'], 'arch': a, 'point': 'slope',
                     **_interval(s.values()), 'seeds': sorted(s)})
      if len(s) < MIN_SEEDS:
        missing.append(f'{a} in {cond["label"]}: slopes of {len(s)} seed(s), {MIN_SEEDS} '
                       'needed (each over at least two values of ' + _x(rule, cond) + ')')
    pairs = ([tuple(rule['versus'])] if rule['versus'] else [(a, None) for a in rule['archs']])
    for a, b in pairs:
      shared = sorted(set(slopes.get(a, {})) & (set(slopes.get(b, {})) if b else set(slopes.get(a, {}))))
      if len(shared) < MIN_SEEDS:
        continue
      va = [slopes[a][s] for s in shared]
      vb = [slopes[b][s] for s in shared] if b else [0.0] * len(shared)
      tests.append({'condition': cond['label'], 'a': a, 'b': b or 'zero slope',
                    'n': len(shared), 'difference': statistics.fmean(va) - statistics.fmean(vb),
                    'ratio': None, 'p': significance.paired_p(va, vb)})
  return rows, tests, missing


def _judge_baseline(rule, records, higher):
  rows, tests, missing = [], [], []
  base_key = metrics.named_baseline_key(rule['baseline'], rule['metric'])
  for cond in rule['conditions']:
    for a in rule['archs']:
      mine = seeds_of(records, a, cond['where'], rule['metric'])
      base = seeds_of(records, a, cond['where'], base_key)
      if mine:
        rows.append({'condition': cond['label'], 'arch': a,
                     **_interval(mine.values(), rule['metric']),
                     'seeds': sorted(mine)})
      if base:
        rows.append({'condition': cond['label'], 'arch': f'{rule["baseline"]} (baseline)',
                     **_interval(base.values(), rule['metric']), 'seeds': sorted(base)})
      shared = sorted(set(mine) & set(base))
      if len(shared) < MIN_SEEDS:
        missing.append(f'{a} in {cond["label"]}: {len(shared)} seed(s) with the model and '
                       f'{base_key}, {MIN_SEEDS} needed')
        continue
      va, vb = [mine[s] for s in shared], [base[s] for s in shared]
      tests.append({'condition': cond['label'], 'a': a, 'b': rule['baseline'],
                    'n': len(shared), 'difference': statistics.fmean(va) - statistics.fmean(vb),
                    'ratio': statistics.fmean(va) / statistics.fmean(vb)
                    if statistics.fmean(vb) else None,
                    'p': significance.paired_p(va, vb)})
  return rows, tests, missing


def _test_passes(t: dict, rule: dict, higher: bool) -> bool:
  """The test favours the claim: significant after adjustment, the right way, and beyond
  the rule's margin or factor."""
  if rule['kind'] == 'trend':
    wanted = t['difference'] > 0 if rule['increasing'] else t['difference'] < 0
    return wanted and t['p_adjusted'] < ALPHA
  if not (_better(t['difference'], higher) and t['p_adjusted'] < ALPHA):
    return False
  if rule.get('factor') and t['ratio'] is not None:
    ratio = t['ratio'] if higher else (1 / t['ratio'] if t['ratio'] else math.inf)
    return ratio >= rule['factor']
  return abs(t['difference']) >= (rule.get('margin') or 0.0)


def _why_not(t: dict, rule: dict, higher: bool) -> str:
  if t['p_adjusted'] >= ALPHA:
    return (f'{t["a"]} vs {t["b"]}: not significant (adjusted p={t["p_adjusted"]:.2g}, '
            f'n={t["n"]})')
  if rule['kind'] == 'trend':
    return f'{t["a"]} vs {t["b"]}: the slope goes the other way (adjusted p={t["p_adjusted"]:.2g})'
  if not _better(t['difference'], higher):
    return f'{t["a"]} vs {t["b"]}: significantly the other way (adjusted p={t["p_adjusted"]:.2g})'
  return f'{t["a"]} vs {t["b"]}: significant but within the threshold'


def judge_claim(claim: dict, records: list[dict]) -> dict[str, Any]:
  """The verdict of one claim on the records of its cells (see the module docstring)."""
  out = {**claim, 'verdict': NO_VERDICT, 'reason': '', 'condition': '', 'evidence': [],
         'tests': [], 'outcomes': [], 'seeds': 0}
  if claim.get('untestable'):
    return {**out, 'verdict': NOT_TESTABLE, 'reason': claim['untestable']}
  mine = set(claim['cells'])
  found = [r for r in records if r.get('cell_id') in mine] if mine else list(records)
  rule = claim['rule']
  if not found:
    return {**out, 'reason': 'no record of this claim\'s cells in the run'}
  higher = _higher(rule, found)
  judge = {'compare': _judge_compare, 'edge_lost': _judge_edge, 'trend': _judge_trend,
           'beats_baseline': _judge_baseline}[rule['kind']]
  rows, tests, missing = judge(rule, found, higher)
  for t, q in zip(tests, significance.bh_adjust([t['p'] for t in tests])):
    t['p_adjusted'] = q
    t['passes'] = _test_passes(t, rule, t.get('higher', higher))
  seeds = [r['n'] for r in rows if r.get('point') in (None, 'slope')]
  out.update(evidence=rows, tests=tests, higher_is_better=higher,
             seeds=min(seeds) if seeds else 0)
  failed = sorted({r['status'] for r in found if r['status'] != 'ok'})
  if missing:
    first = next((r for r in found if r['status'] != 'ok'), None)
    note = (f' ({", ".join(failed)} cells among them; the first: '
            f'{_first_line(first.get("error"))})' if failed else '')
    return {**out, 'reason': '; '.join(missing) + note}
  outcomes = []
  for cond in rule['conditions']:
    mine_tests = [t for t in tests if t['condition'] == cond['label']]
    if rule['kind'] == 'beats_baseline' and rule['quantifier'] == 'any':
      supported = any(t['passes'] for t in mine_tests)
    else:
      supported = all(t['passes'] for t in mine_tests)
    why = '; '.join(_why_not(t, rule, t.get('higher', higher)) for t in mine_tests
                    if not t['passes'])
    outcomes.append({'label': cond['label'], 'expect': cond['expect'],
                     'supported': supported, 'as_predicted': supported == cond['expect'],
                     'why': why})
  out['outcomes'] = outcomes
  held = [o for o in outcomes if o['as_predicted']]
  if len(held) == len(outcomes):
    out['verdict'] = HOLDS
  elif not held:
    out['verdict'] = FAILS
  else:
    out['verdict'] = DEPENDS
    out['condition'] = ('holds ' + ', '.join(o['label'] for o in held) + '; fails '
                        + ', '.join(o['label'] for o in outcomes if not o['as_predicted']))
  out['reason'] = '; '.join(f'{o["label"]}: ' + _outcome_text(o) for o in outcomes)
  return out


def _first_line(error, limit: int = 160) -> str:
  """A failed cell's error, cut to its first sentence (a missing dataset: what to run)."""
  text = ' '.join(str(error or 'no message').split())
  text = text.split(' (at ')[0]
  return text if len(text) <= limit else text[:limit - 1] + '…'


def _outcome_text(o: dict) -> str:
  predicted = 'as the claim predicts' if o['as_predicted'] else 'against the claim'
  shown = 'shown' if o['supported'] else 'not shown'
  return f'{shown}, {predicted}' + (f' ({o["why"]})' if o['why'] and o['supported'] is False
                                   and o['expect'] else '')


def judge(claims: list[dict], records: list[dict]) -> dict[str, Any]:
  first = records[0] if records else {}
  return {'claims': [judge_claim(c, records) for c in claims],
          'run_id': first.get('run_id'), 'machine': (first.get('env') or {}).get('cpu'),
          'backend': (first.get('env') or {}).get('backend'),
          'cells': len(records), 'failed': sum(r['status'] != 'ok' for r in records)}


# ---------------------------------------------------------------------------------------
# Writing.

def _num(x) -> str:
  if x is None:
    return '–'
  if isinstance(x, str):
    return x
  if x == 0:
    return '0'
  return f'{x:.3g}'


def _interval_text(row: dict) -> str:
  if row['low'] is None:
    return f'{_num(row["mean"])} {significance.SINGLE_SEED_MARK}'
  return f'{_num(row["mean"])} [{_num(row["low"])}, {_num(row["high"])}] n={row["n"]}'


def _test_text(c: dict) -> str:
  if not c['tests']:
    return '–'
  worst = max(c['tests'], key=lambda t: t['p_adjusted'])
  kind = ('paired t-test of per-seed slopes' if c['rule']['kind'] == 'trend'
          else 'paired t-test')
  return f'{kind}, {len(c["tests"])} test(s), BH-adjusted p ≤ {worst["p_adjusted"]:.2g}'


def plot_name(claim: dict) -> str:
  return f'claim_{claim["name"].replace("-", "_")}.png'


def _short_interval(row: dict | None) -> str:
  if row is None:
    return '–'
  if row['low'] is None:
    return f'{_num(row["mean"])} {significance.SINGLE_SEED_MARK}'
  return f'{_num(row["mean"])} [{_num(row["low"])}, {_num(row["high"])}]'


def headline(c: dict) -> str:
  """The evidence in a line per condition: the claimed winner's interval against the
  closest contender's (the test with the largest adjusted p); a trend's slopes."""
  if not c['evidence']:
    return '–'
  rows = {(e['condition'], e['arch'], e.get('point')): e for e in c['evidence']}
  parts = []
  for cond in c['rule']['conditions']:
    label = cond['label']
    tests = [t for t in c['tests'] if t['condition'] == label]
    if c['rule']['kind'] == 'trend':
      slopes = [f'{a} slope {_short_interval(rows.get((label, a, "slope")))}'
                for a in c['rule']['archs'] if (label, a, 'slope') in rows]
      parts.append(f'{label}: ' + ', '.join(slopes))
      continue
    if not tests:
      continue
    t = max(tests, key=lambda t: t['p_adjusted'])
    if t['a'].startswith('edge '):  # edge_lost's second condition: the edges compared
      parts.append(f'{label}: {t["a"]} minus {t["b"]} = {_num(t["difference"])} '
                   f'(adjusted p={t["p_adjusted"]:.2g})')
      continue
    other = (f'{t["b"]} (baseline)' if c['rule']['kind'] == 'beats_baseline' else t['b'])
    parts.append(f'{label}: {t["a"]} {_short_interval(rows.get((label, t["a"], None)))} vs '
                 f'{t["b"]} {_short_interval(rows.get((label, other, None)))}')
  return '; '.join(parts) or '–'


def verdict_table(judged: dict) -> str:
  rows = []
  for c in judged['claims']:
    verdict = f'**{c["verdict"]}**' + (f': {c["condition"]}' if c['condition'] else '')
    if c['verdict'] in (NOT_TESTABLE, NO_VERDICT):
      verdict += f' ({c["reason"]})'
    rows.append([c['name'], c['text'], verdict,
                 str(c['seeds']) if c['seeds'] else '–',
                 headline(c) if c['rule'] else '–', _test_text(c)])
  return records_lib.markdown_table(['claim', 'as usually stated', 'verdict', 'seeds (min)',
                                     'evidence: mean [95% interval]', 'test'], rows)


def _arrow(c: dict) -> str:
  higher = c.get('higher_is_better')
  return metrics.arrow(c['rule']['metric']) if higher is None else ('↑' if higher else '↓')


def claim_markdown(c: dict, plots: bool = True) -> list[str]:
  lines = [f'## {c["name"]}: {c["text"]}', '',
           f'*Source of the wording*: {c["source"]}. *Family*: {c["family"]}.', '',
           f'- Experiment: {c["experiment"]}',
           f'- Statistic: {c["statistic"]}',
           f'- Decision rule: {c["threshold"]}']
  if c['rule']:
    lines.append('- Predicted per condition: ' + '; '.join(
        f'{cond["label"]}: {"shown" if cond["expect"] else "not shown"}'
        for cond in c['rule']['conditions']))
  lines += ['', f'**Verdict: {c["verdict"]}**' + (f' ({c["condition"]})' if c['condition']
                                                  else '') + (f'. {c["reason"]}.' if c['reason']
                                                              else '.')]
  if c['evidence']:
    metric = c['rule']['metric']
    several = any('metric' in cond for cond in c['rule']['conditions'])
    header = ['condition', 'arch'] + (['point'] if c['rule']['kind'] == 'trend' else []) + (
        ['metric', 'value'] if several else
        [f'{metric} {_arrow(c) if c["rule"]["kind"] != "trend" else ""}'.strip()]
    ) + ['seeds']
    body = [[e['condition'], e['arch']] + ([_num(e['point'])]
                                           if c['rule']['kind'] == 'trend' else [])
            + ([e.get('metric', metric)] if several else [])
            + [_interval_text(e), ','.join(map(str, e['seeds']))] for e in c['evidence']]
    lines += ['', f'### Evidence: {c["name"]}', '',
              'Mean over seeds [95% Student-t interval] n=seeds.', '',
              records_lib.markdown_table(header, body)]
  if c['tests']:
    body = [[t['condition'], f'{t["a"]} vs {t["b"]}', str(t['n']), _num(t['difference']),
             _num(t['ratio']), f'{t["p"]:.2g}', f'{t["p_adjusted"]:.2g}',
             'yes' if t['passes'] else 'no'] for t in c['tests']]
    lines += ['', f'### Tests: {c["name"]}', '',
              f'Paired t-tests over shared seeds, Benjamini-Hochberg adjusted over the '
              f'claim\'s tests; passes: significant at {ALPHA:g} the claimed way and beyond '
              'the threshold.', '',
              records_lib.markdown_table(['condition', 'pair', 'n', 'difference', 'ratio', 'p',
                                          'adjusted p', 'passes'], body)]
  if plots and c['evidence']:
    lines += ['', f'Plot: `{plot_name(c)}`.']
  return lines


def to_markdown(judged: dict) -> str:
  counts: dict[str, int] = {}
  for c in judged['claims']:
    counts[c['verdict']] = counts.get(c['verdict'], 0) + 1
  where = judged.get('machine') or 'the machine of the records'
  lines = ['# Claims: what people believe, tested', '',
           f'Run {judged.get("run_id")}: {judged["cells"]} cells ({judged["failed"]} failed) '
           f'on {where} (backend {judged.get("backend")}); rebuilt by `archbench report DIR`. '
           'Verdicts about time hold for this machine only.', '',
           '## Verdicts', '',
           'holds: every condition as the claim predicts; fails: none; depends: some (which '
           f'are named); no verdict: fewer than {MIN_SEEDS} ok seeds or no records; not '
           'testable: archbench cannot test it yet (the reason is given).', '',
           verdict_table(judged), '',
           ', '.join(f'{n} {v}' for v, n in counts.items()) + '.']
  for c in judged['claims']:
    lines += [''] + claim_markdown(c)
  return '\n'.join(lines) + '\n'


def _bars(ax, rows: list[dict], labels: list[str], color: str, label: str | None = None):
  """Means with their intervals as error bars, one bar per row; a log axis where the
  means span more than LOG_SPAN (step times from T=64 to 1024)."""
  means = [e['mean'] for e in rows]
  err = [[e['mean'] - (e['low'] if e['low'] is not None else e['mean']) for e in rows],
         [(e['high'] if e['high'] is not None else e['mean']) - e['mean'] for e in rows]]
  if min(means) > 0 and max(means) / min(means) > LOG_SPAN:
    ax.set_yscale('log')
    err[0] = [min(lo, m * 0.999) for lo, m in zip(err[0], means)]  # a bar's floor above 0
  ax.bar(range(len(rows)), means, yerr=err, capsize=3, color=color, label=label)
  labels = ['\n'.join(textwrap.fill(line, 14) for line in text.split('\n')) for text in labels]
  ax.set_xticks(range(len(rows)), labels, fontsize=7,
                rotation=30 if len(rows) > 6 else 0, ha='right' if len(rows) > 6 else 'center')


def write_plot(c: dict, path: pathlib.Path) -> bool:
  """A claim's evidence as a plot: means with their intervals per condition and model
  (a trend: against x). False when there is nothing to draw."""
  rows = [e for e in c['evidence'] if e.get('point') != 'slope']
  if not rows:
    return False
  from archbench.benchmarks.results import plots
  plt = plots.pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 3.6))
  metric = c['rule']['metric']
  if c['rule']['kind'] == 'trend':
    # One panel per x (parameters in one condition, training FLOPs in the next).
    xs_of = {cond['label']: _x(c['rule'], cond) for cond in c['rule']['conditions']}
    panels = list(dict.fromkeys(xs_of.values()))
    if len(panels) > 1:
      plt.close(fig)
      fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.6), sharey=True)
    else:
      axes = [ax]
    for x_name, panel in zip(panels, axes):
      for cond in [k for k, v in xs_of.items() if v == x_name]:
        for arch in dict.fromkeys(e['arch'] for e in rows if e['condition'] == cond):
          pts = [e for e in rows if (e['condition'], e['arch']) == (cond, arch)]
          err = [[e['mean'] - (e['low'] if e['low'] is not None else e['mean']) for e in pts],
                 [(e['high'] if e['high'] is not None else e['mean']) - e['mean']
                  for e in pts]]
          panel.errorbar([e['point'] for e in pts], [e['mean'] for e in pts], yerr=err,
                         marker='o', capsize=3, label=f'{arch} ({cond})')
      if c['rule']['log_x']:
        panel.set_xscale('log', base=2)
      panel.set_xlabel(x_name)
      if panel is not axes[0]:
        panel.legend(fontsize=7)
        panel.grid(True, alpha=0.3)
    ax = axes[0]
  else:
    edges = [e for e in rows if e['arch'].startswith('edge ')]
    rows = [e for e in rows if not e['arch'].startswith('edge ')]
    # One panel per metric (step time in one condition, time to target in the next), and
    # edge_lost's edges beside the values, on their own axis.
    by_metric = {}
    for e in rows:
      by_metric.setdefault(e.get('metric', metric), []).append(e)
    panels = [(m, r, '#4c72b0', m) for m, r in by_metric.items()]
    if edges:
      panels.append((f'edge in {metric}', edges, '#dd8452', None))
    if len(panels) > 1:
      plt.close(fig)
      fig, axes = plt.subplots(1, len(panels), figsize=(min(4.0 + 2.4 * len(panels), 14), 3.8),
                               gridspec_kw={'width_ratios': [len(p[1]) for p in panels]})
    else:
      axes = [ax]
    for (label, some, color, legend), panel in zip(panels, axes):
      if some is edges:
        _bars(panel, some, [e['arch'][5:].replace(', ', '\n') for e in some], color)
        panel.axhline(0, color='#555', linewidth=0.8)
      else:
        _bars(panel, some, [f'{e["arch"]}\n{e["condition"]}' for e in some], color, legend)
      panel.set_ylabel(label)
      if panel is not axes[0]:
        panel.grid(True, alpha=0.3)
    ax = axes[0]
    metric = panels[0][0]
  ax.set_ylabel(metric)
  ax.set_title(f'{c["name"]}: {c["verdict"]}', fontsize=10)
  plots.save(plt, fig, ax, path)
  plots.shrink_png(path)
  return True


def write(out_dir: pathlib.Path, claims: list[dict], records: list[dict],
          wall_s: float | None = None, plots: bool = True) -> dict[str, Any]:
  """Judge `records` and write claims.md, claims.json, claims.tex and a plot per claim
  (claim_<name>.png) in out_dir. `wall_s` is kept from an earlier write when not given."""
  judged = judge(claims, records)
  if wall_s is None and (out_dir / FILE_JSON).is_file():
    wall_s = json.loads((out_dir / FILE_JSON).read_text(encoding='utf-8')).get('wall_s')
  judged['wall_s'] = wall_s
  judged['plots'] = []
  if plots:
    for c in judged['claims']:
      if c['evidence'] and write_plot(c, out_dir / plot_name(c)):
        judged['plots'].append(plot_name(c))
  text = to_markdown(judged)
  files.write_atomically(out_dir / FILE_MD, text)
  files.write_atomically(out_dir / FILE_JSON, json.dumps(
      {'spec': claims, **judged}, indent=1, default=str) + '\n')
  files.write_atomically(out_dir / FILE_TEX, markup.latex_tables(
      text, preamble='archbench claims: verdicts and evidence; rebuilt by `archbench report '
      'DIR`.'))
  return judged


def write_spec(out_dir: pathlib.Path, claims: list[dict]) -> None:
  """The claims alone, before their cells run: a killed run, resumed, is judged by
  `archbench report DIR` or `archbench claims --resume DIR`."""
  files.write_atomically(out_dir / FILE_JSON, json.dumps({'spec': claims}, indent=1))


def saved(out_dir: pathlib.Path) -> list[dict] | None:
  """The claims a run directory is judged against, if it is a claims run."""
  path = out_dir / FILE_JSON
  if not path.is_file():
    return None
  try:
    found = json.loads(path.read_text(encoding='utf-8'))['spec']
    if not all({'name', 'rule', 'cells'} <= set(c) for c in found):
      raise KeyError('spec')
  except (ValueError, KeyError, TypeError):
    raise UsageError(f'{path} is not a claims study written by archbench') from None
  return found


def plot_files(out_dir: pathlib.Path) -> list[pathlib.Path]:
  """The claim plots a judged run holds (report.html embeds them)."""
  path = out_dir / FILE_JSON
  if not path.is_file():
    return []
  try:
    names = json.loads(path.read_text(encoding='utf-8')).get('plots') or []
  except ValueError:
    return []
  return [out_dir / n for n in names if (out_dir / n).is_file()]
