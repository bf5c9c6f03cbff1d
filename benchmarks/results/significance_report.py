"""The report's statistics blocks (summary.md, and so summary.tex and report.html): pairwise
tests per task, the aggregate across tasks, steps to solve, the budget that was matched, and
the performance-profile plot. The statistics themselves, and why they were chosen, are in
significance.py; this module puts them on the tables' grid (tables.py)."""
from __future__ import annotations

import math
import pathlib
import statistics

import numpy as np

from archbench.benchmarks.results import metrics, plots, tables
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import significance as sig
from archbench.benchmarks.results.significance import SINGLE_SEED_MARK

PROFILE_FILE = 'performance_profile.png'


def _headline(groups, column) -> tuple[str | None, dict]:
  """(headline key, task spec) of a column."""
  for (_, c), group in groups.items():
    if c == column:
      for r in group:
        if (key := metrics.headline_metric(r)):
          return key, metrics.task_spec(r)
  return None, {}


def scores(records) -> dict[str, dict[str, dict[int, float]]]:
  """row -> column -> seed -> normalised headline score, for the columns whose metric has
  a trivial baseline and a perfect value."""
  rows, cols, groups = tables.grouped(_evaluated(records))
  out: dict = {}
  for c in cols:
    key, spec = _headline(groups, c)
    if key is None:
      continue
    higher = metrics.higher_is_better(key, spec)
    for a in rows:
      group = groups.get((a, c))
      base = sig.strongest_baseline(group, key, higher) if group else None
      if base is None:
        continue
      perfect = next((f for r in group if (f := metrics.floor_value(r['metrics'], key))
                      is not None), None)
      by_seed = {s: sig.normalised(v, base, key, higher, perfect)
                 for s, v in sig.seed_values(group, key).items()}
      by_seed = {s: v for s, v in by_seed.items() if v is not None}
      if by_seed:
        out.setdefault(a, {})[c] = by_seed
  return out


def _evaluated(records):
  return [r for r in records if not records_lib.is_cost_point(r)]


def _distinct(records, get) -> list[str]:
  return tables.ordered(str(get(r.get('config') or {})) for r in records)


def _steps_text(records) -> str:
  """The training steps, checked to be equal within every task (a column of the tables)."""
  _, cols, groups = tables.grouped(records)
  steps_of = {c: sorted({records_lib.train_setting(r, 'steps') or 0
                         for (_, c2), g in groups.items() if c2 == c for r in g}) for c in cols}
  steps = sorted({s for v in steps_of.values() for s in v})
  text = (f'training steps ({steps[0]})' if len(steps) == 1 else
          f'training steps ({steps[0]} to {steps[-1]} per task)')
  unequal = [f'{c} ({", ".join(map(str, v))} by architecture)'
             for c, v in steps_of.items() if len(v) > 1]
  return text + (f', except {"; ".join(unequal)}' if unequal else '')


def budget_text(records) -> str:
  """What was held equal: parameters (the size) and steps, FLOPs or seconds
  (config.budget.matched; records from before it matched steps), and which weights were
  evaluated (config.eval_weights: the final ones in records from before it)."""
  records = _evaluated(records)
  matched = _distinct(records, lambda c: (c.get('budget') or {}).get('matched') or 'steps')
  sizes = tables.ordered(str(r['size']) for r in records)
  names = {'flops': 'training FLOPs', 'seconds': 'training seconds'}

  def amount(kind):  # config.budget.flops / .seconds: the budget each cell was given
    values = _distinct(records, lambda c: (c.get('budget') or {}).get(kind))
    return f' ({", ".join(f"{float(v):.3g}" for v in values)})' if 'None' not in values else ''
  parts = [_steps_text(records) if kind == 'steps' else names.get(kind, kind) + amount(kind)
           for kind in matched]
  weights = {'final': 'the final weights', 'best_val': 'the weights best on validation'}
  evaluated = _distinct(records, lambda c: c.get('eval_weights') or 'final')
  stopping = {bool(records_lib.train_setting(r, 'stop_at_target')) for r in records}
  stops = ('' if True not in stopping else
           ', each cell stopping at its task\'s solved threshold on validation'
           if stopping == {True} else
           ', some cells stopping at their task\'s solved threshold on validation')
  tuned = {((r.get('config') or {}).get('settings') or {}).get('from') == 'tuned'
           for r in records}
  settings = ('' if True not in tuned else
              '; settings: each pair\'s selection by `archbench tune` on validation '
              '(config.settings)' if tuned == {True} else
              '; settings: some pairs\' selected by `archbench tune` (config.settings)')
  return (f'Budget matched: parameters (size {", ".join(sizes)}) and {" / ".join(parts)}'
          f'{stops}{settings}; evaluated: '
          f'{" / ".join(weights.get(w, w) for w in evaluated)}.')


def _sign(value: float, fmt: str) -> str:
  return ('+' if value >= 0 else '') + fmt.format(value)


def _p_text(p: float) -> str:
  return '< 0.001' if p < 0.001 else f'{p:.3f}'


def pairwise_section(records) -> list[str]:
  """Per task, every pair of rows with two or more shared seeds: the difference of their
  means, p, BH-adjusted p and the verdict."""
  rows, cols, groups = tables.grouped(_evaluated(records))
  blocks, untestable = [], []
  for c in cols:
    key, spec = _headline(groups, c)
    if key is None:
      continue
    higher = metrics.higher_is_better(key, spec)
    by_row = {a: v for a in rows
              if (a, c) in groups and (v := sig.seed_values(groups[(a, c)], key))}
    pairs, untested = sig.pairwise(by_row, higher)
    if not pairs:
      untestable.append(c)
      continue
    fmt = metrics.value_format(key)
    body = [[f'{p.first} vs {p.second}', str(p.n), _sign(p.difference, fmt), _p_text(p.p),
             _p_text(p.p_adjusted),
             f'**{p.winner}** beats {p.second}' if p.winner else 'no significant difference']
            for p in pairs]
    blocks += [f'### Pairwise: {c} ({metrics.label(key) or key} {metrics.arrow(key, spec)})',
               records_lib.markdown_table(
                   ['pair', 'shared seeds', 'difference', 'p', 'p (BH)', 'verdict'], body)]
    if untested:
      blocks.append(f'{len(untested)} other pair(s) share fewer than two seeds: not tested.')
  if not blocks and not untestable:
    return []
  legend = (f'Paired t-test over the seeds both architectures ran (a seed fixes the data '
            f'for all of them), p-values Benjamini–Hochberg adjusted over each task\'s '
            f'pairs; "beats" only where the adjusted p < {sig.ALPHA:g}. Each pair lists the '
            f'better mean first; difference = first − second. {budget_text(records)}')
  tail = ([f'No pair with two or more shared seeds, so no claim: {", ".join(untestable)}.']
          if untestable else [])
  return ['## Pairwise comparisons', legend] + blocks + tail


def aggregate_section(records) -> list[str]:
  """Per row, the mean baseline-normalised score over its tasks with its interval, and
  each task's."""
  by_row = scores(records)
  if not by_row:
    return []
  _, all_cols, _ = tables.grouped(_evaluated(records))
  cols = [c for c in all_cols if any(c in per for per in by_row.values())]
  body = []
  for row, by_task in by_row.items():
    agg = sig.aggregate(by_task)
    text = (f'{agg.mean:.3f} {SINGLE_SEED_MARK}' if agg.low is None
            else f'{agg.mean:.3f} [{agg.low:.3f}, {agg.high:.3f}]')
    body.append([row, text, str(len(by_task)), str(agg.min_seeds)]
                + [f'{agg.per_task[c]:.3f}' if c in agg.per_task else '' for c in cols])
  left_out = [c for c in all_cols if c not in cols]
  legend = ('Baseline-normalised headline score: 0 = the task\'s strongest trivial baseline, '
            '1 = perfect; accuracy-like (v − b)/(1 − b), losses and errors (b − v)/b (the '
            f'fraction of the baseline\'s error removed, at least {sig.SCORE_FLOOR:g}). Mean over '
            'the tasks an architecture ran of its mean over seeds, with a 95% percentile '
            'bootstrap interval resampling seeds within each task (tasks with one seed held '
            'fixed); rows that ran different tasks are not comparable. '
            f'{SINGLE_SEED_MARK} one seed on every task: no interval. Performance profile: '
            f'{PROFILE_FILE}. {budget_text(records)}'
            + (f' Not aggregated (no trivial baseline or no perfect value): '
               f'{", ".join(left_out)}.' if left_out else ''))
  return ['## Aggregate across tasks', legend, records_lib.markdown_table(
      ['arch', 'score [95% CI]', 'tasks', 'min seeds'] + cols, body)]


def steps_text(group) -> str:
  """Median steps to the solved threshold over a cell's ok seeds (a seed that never got
  there counts as never), and how many seeds got there."""
  ok = [r for r in group if r.get('status') == 'ok' and 'steps_to_target' in r['metrics']]
  if not ok:
    return ''
  steps = [r['metrics']['steps_to_target'] for r in ok]
  reached = [s for s in steps if s is not None]
  median = statistics.median_high([math.inf if s is None else s for s in steps])
  shown = 'never' if math.isinf(median) else f'{median:,.0f}'
  return f'{shown} ({len(reached)}/{len(steps)})'


def steps_section(records) -> list[str]:
  """Steps to solve per architecture and task, where the records measured them."""
  evaluated = _evaluated(records)
  if not any('steps_to_target' in (r.get('metrics') or {}) for r in evaluated):
    return []
  rows, cols, groups = tables.grouped(evaluated)
  body = [[a] + [steps_text(groups[(a, c)]) if (a, c) in groups else '' for c in cols]
          for a in rows]
  legend = ('Training steps until the validation metric first met the task\'s solved '
            'threshold: the median over seeds (a seed that never met it counts as never; '
            'with an even count, the higher middle value), then (seeds that met it / '
            f'seeds). {budget_text(records)}')
  return ['## Steps to solve', legend, records_lib.markdown_table(['arch'] + cols, body)]


def markdown(records) -> list[str]:
  """The statistics blocks of summary.md: pairwise tests, the aggregate, steps to solve."""
  if all(records_lib.is_cost_point(r) for r in records):
    return []
  return pairwise_section(records) + aggregate_section(records) + steps_section(records)


def write_plots(out_dir: pathlib.Path, records) -> list[pathlib.Path]:
  """The performance profile of the aggregate's rows, where two or more tasks were run by
  two or more rows."""
  by_row = {row: {t: statistics.fmean(v.values()) for t, v in per.items()}
            for row, per in scores(records).items()}
  tasks = [t for t in tables.ordered(t for per in by_row.values() for t in per)
           if sum(t in per for per in by_row.values()) > 1]
  if len(tasks) < 2:  # over one task, a profile only redraws that task's column
    return []
  ratios = sig.performance_profile(by_row)
  top = max(max(r) for r in ratios.values() if r)
  taus = np.geomspace(1, max(top * 1.5, 2), 400)
  plt = plots.pyplot()
  colours = plt.get_cmap('tab10' if len(ratios) <= 10 else 'tab20')
  fig, ax = plt.subplots(figsize=(8, 4.2), layout='constrained')
  for i, (row, rs) in enumerate(ratios.items()):
    ax.step(taus, [sig.rho(rs, t) for t in taus], where='post', color=colours(i),
            linestyle='-' if i < 20 else '--',
            linewidth=1.5, label=f'{row} ({len(rs)} task{"s" * (len(rs) > 1)})')
  ax.set_xscale('log', base=2)
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel('τ: gap to perfect within a factor τ of the best architecture\'s')
  ax.set_ylabel('fraction of its tasks')
  ax.set_title('Performance profile (Dolan–Moré) of the headline metric', fontsize=11)
  ax.grid(True, alpha=0.3)
  fig.legend(loc='outside right center', fontsize=8, frameon=False)
  path = out_dir / PROFILE_FILE
  fig.savefig(path, dpi=plots.DPI)
  plt.close(fig)
  plots.shrink_png(path)
  return [path]
