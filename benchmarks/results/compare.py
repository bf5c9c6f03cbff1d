"""Compare two runs cell by cell (`archbench compare BASE NEW`): did a change make anything
worse?

Cells are matched by identity without the seed, so the seeds of one experiment form one
group on each side, and every difference is judged against a tolerance that says where it
came from: the spread between seeds, the spread between timing windows, or (with one seed,
where noise and change cannot be told apart) a stated default. Nothing is a guess.

Metrics bounded in [0, 1] (accuracy) are compared in absolute points; unbounded ones
(losses, MSE, bits/char), which span decades, on a log ratio: |ln(new / base)| against a
band of ln(1.25) (metrics.RATIO_BAND), never an absolute floor that would swamp a small
loss (0.00087 and 0.0019 differ by a factor 2.2, whatever their distance).

Verdicts: 'same' (equal up to rounding), 'within noise' (within the tolerance), 'better',
'worse' (beyond the tolerance, in the good or bad direction), 'not judged' (beyond its
band with one seed on a side, where one seed cannot tell a changed value from a different
trajectory on another machine: a secondary metric, the held-out loss beside a task's
headline metric, which carries the cell's verdict; or, with one seed on both sides, an
unbounded headline metric whose two values are both solved or both at chance
(`metrics.level`) and within a factor 4: a change of level, a larger factor, or a change
within `partial` is still judged), 'not comparable' (times from
different machines, or a metric that one side does not record). A cell that fails on the
new side only is 'worse'; cells run on one side only are listed, not judged.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
import statistics
from typing import Any

from archbench.benchmarks.results import metrics
from archbench.benchmarks.results import records as records_lib
from archbench.common import files

# Equal up to rounding: |diff| <= SAME_REL * max(|base|, |new|) is 'same', not a change.
SAME_REL = 1e-9
# Metrics (eval/...) with >= 2 seeds on both sides: a SIGMA_K-sigma band on the difference of
# the two means, k * sqrt(sd_base^2/n_base + sd_new^2/n_new). Three sigma: with a dozen
# metrics per cell and dozens of cells, a two-sigma band would flag noise every run.
SIGMA_K = 3.0
# The smallest change worth a verdict, and the whole tolerance with one seed on a side
# (metrics.py): absolute 0.02 for metrics bounded in [0, 1] (accuracy, exact match); for
# unbounded ones (MSE, losses, bits/char) a factor 1.25 either way, |ln(new / base)| <=
# ln(1.25), since they span decades (0.167 at a baseline, 1e-4 when solved) and no
# absolute step fits them all. Values that are not all positive (a metric that can be
# negative) fall back to 25% of |base|.
MIN_CHANGE_ABS = metrics.CHANCE_MARGIN_ABS
LOG_BAND = math.log(metrics.RATIO_BAND)
# Step time: relative tolerance = the larger spread (max - min) / median of the timing
# windows on either side (median over seeds), at least TIMING_FLOOR_REL. The same machine
# kind can still differ by up to 2x between machines: compare times from one machine only.
TIMING_METRIC = 'perf/step_ms'
TIMING_FLOOR_REL = 0.10  # two runs on one machine differ by ~5% beyond their windows

VERDICTS = ('worse', 'better', 'within noise', 'same', 'not judged', 'not comparable')
ONE_SEED_WARNING = ('{n} comparison(s) have one seed on a side: their tolerance is a stated '
                    'default, and one seed cannot separate noise from change (run more seeds).')
NOT_JUDGED_NOTE = ('one seed: a secondary metric is not judged beyond its band (the headline '
                   'metric carries the cell\'s verdict)')
DIFFERENT_MACHINES = 'different machines: times not comparable'
# One seed a side, both solved or both at chance: a factor up to this is what another
# machine's rounding can do to one training run (measured: 2.2x on a solved loss).
SAME_LEVEL_MAX_RATIO = 4.0
SAME_LEVEL_NOTE = ('one seed, both {level}: a loss or MSE that moves by a factor of 4 at most '
                   'within one level (a solved adding MSE of 1e-4 or 2e-4) is what another '
                   'machine\'s float rounding can do to one training run; seeds judge it')
FILE_MD = 'comparison.md'  # what `archbench reproduce DIR` writes into the new run


@dataclasses.dataclass
class Row:
  """One cell (all its seeds) and one metric, base against new. `metric` is a metric key,
  TIMING_METRIC, or 'status' for a cell that failed on a side (values then None)."""
  cell: str
  arch: str
  task: str
  metric: str
  base: float | None
  base_std: float | None
  n_base: int
  new: float | None
  new_std: float | None
  n_new: int
  diff: float | None
  tolerance: float | None
  tolerance_source: str
  verdict: str
  note: str = ''
  higher_is_better: bool | None = None
  ratio: float | None = None  # new / base, for step time
  log_scale: bool = False  # tolerance is a band on ln(new / base), not on diff


@dataclasses.dataclass
class Comparison:
  rows: list[Row]
  only_in_base: list[str]
  only_in_new: list[str]
  warnings: list[str]

  @property
  def regressions(self) -> list[Row]:
    return [r for r in self.rows if r.verdict == 'worse']

  @property
  def exit_code(self) -> int:
    """1 when anything got worse beyond its tolerance (for CI), else 0."""
    return 1 if self.regressions else 0

  def counts(self) -> dict[str, int]:
    return {v: n for v in VERDICTS if (n := sum(r.verdict == v for r in self.rows))}


# ---------------------------------------------------------------------------------------
# Loading and grouping.

def load(path) -> list[dict[str, Any]]:
  """The records of a run: `path` is its directory (holding results.jsonl) or the file."""
  return records_lib.load_run(path)


def _group_key(record) -> str:
  """The cell's identity with the seed set to 0: the seeds of one experiment share it."""
  return dataclasses.replace(records_lib.cell_of(record), seed=0).digest


def _groups(records) -> dict[str, list[dict]]:
  out: dict[str, list[dict]] = {}
  for r in records:
    out.setdefault(_group_key(r), []).append(r)
  return out


def _display_names(groups: dict[str, list[dict]]) -> dict[str, str]:
  """key -> 'arch/task[params]/size', without the seed. Like summary.md, it names only the
  task parameters that vary between the compared cells of a task, and the length (what
  sets a sequence task's difficulty); cells that differ only in what the name leaves out
  (training settings, overrides, a constant parameter) get their digest too."""
  cells = {k: records_lib.cell_of(g[0]) for k, g in groups.items()}
  values: dict[tuple[str, str], set] = {}
  for cell in cells.values():
    for param, value in cell.task_params.items():
      values.setdefault((cell.task, param), set()).add(repr(value))

  def name(cell):
    shown = [f'{p}={v}' for p, v in cell.task_params.items()
             if p == 'length' or len(values[(cell.task, p)]) > 1]
    return f'{cell.arch}/{cell.task}{"[" + ",".join(shown) + "]" if shown else ""}/{cell.size}'
  names = {k: name(cell) for k, cell in cells.items()}
  seen: dict[str, int] = {}
  for name in names.values():
    seen[name] = seen.get(name, 0) + 1
  return {k: name if seen[name] == 1 else f'{name} #{k[:8]}' for k, name in names.items()}


# ---------------------------------------------------------------------------------------
# Tolerances and verdicts.

def _stats(values: list[float]) -> tuple[float, float | None]:
  return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _pct(x: float) -> str:
  return f'{100 * x:.0f}%'


def metric_tolerance(metric: str, base: list[float],
                     new: list[float]) -> tuple[float, str, bool]:
  """(tolerance, where it came from, whether it bounds ln(new / base) rather than the
  difference) for a metric's means: the default band (MIN_CHANGE_ABS, LOG_BAND), widened
  to SIGMA_K sigma of the seeds (of their logs, on the log scale) when both sides have
  several; when only one side has several, their spread stands for one run's noise on
  both sides (a reference run of one seed against a run of three)."""
  log_scale = not metrics.is_bounded(metric) and min(base + new) > 0
  if metrics.is_bounded(metric):
    floor, floor_text = MIN_CHANGE_ABS, f'±{MIN_CHANGE_ABS:g}'
  elif log_scale:
    floor, floor_text = LOG_BAND, f'×/÷{metrics.RATIO_BAND:g}'
  else:
    floor = (metrics.RATIO_BAND - 1) * abs(statistics.fmean(base))
    floor_text = f'±{_pct(metrics.RATIO_BAND - 1)} of base'
  if len(base) < 2 and len(new) < 2:
    return floor, f'default {floor_text}, one seed', log_scale
  scaled = (lambda v: [math.log(x) for x in v]) if log_scale else list
  if len(base) >= 2 and len(new) >= 2:
    band = SIGMA_K * math.sqrt(statistics.variance(scaled(base)) / len(base)
                               + statistics.variance(scaled(new)) / len(new))
    source = f'{SIGMA_K:g}σ of {len(base)}+{len(new)} seeds'
  else:  # one seed on one side: the other side's seeds measure one run's noise for both
    seeded = base if len(base) >= 2 else new
    band = SIGMA_K * statistics.stdev(scaled(seeded)) * math.sqrt(1 / len(base) + 1 / len(new))
    source = f'{SIGMA_K:g}σ of the {len(seeded)} seeds of one side'
  source += ' (of ln)' if log_scale else ''
  if band >= floor:
    return band, source, log_scale
  return floor, f'floor {floor_text} > {source}', log_scale


def _window_spread(record) -> float | None:
  perf = record.get('perf') or {}
  lo, hi, mid = perf.get('step_ms_min'), perf.get('step_ms_max'), perf.get('step_ms')
  if lo is None or hi is None or not mid:
    return None
  return (hi - lo) / mid


def timing_tolerance(base_records, new_records, base_mean: float) -> tuple[float, str]:
  """(tolerance in ms, where it came from): the larger timing-window spread of the two
  sides (each the median over its seeds), at least TIMING_FLOOR_REL."""
  spreads = []
  for side in (base_records, new_records):
    values = [s for r in side if (s := _window_spread(r)) is not None]
    if values:
      spreads.append(statistics.median(values))
  spread = max(spreads, default=0.0)
  if spread >= TIMING_FLOOR_REL:
    return spread * base_mean, f'window spread {_pct(spread)}'
  floor = _pct(TIMING_FLOOR_REL)
  return TIMING_FLOOR_REL * base_mean, f'floor {floor} > window spread {_pct(spread)}'


def verdict(base: float, new: float, tolerance: float, higher_is_better: bool,
            log_scale: bool = False) -> str:
  """`tolerance` bounds ln(new / base) when `log_scale`, else new - base."""
  diff = new - base
  if diff == 0 or abs(diff) <= SAME_REL * max(abs(base), abs(new)):
    return 'same'
  change = math.log(new / base) if log_scale else diff
  if abs(change) <= tolerance:
    return 'within noise'
  return 'better' if (diff > 0) == higher_is_better else 'worse'


# ---------------------------------------------------------------------------------------
# The comparison.

def _ok(group):
  return [r for r in group if r['status'] == 'ok']


def _values(records, metric: str) -> list[float]:
  if metric == TIMING_METRIC:
    raw = [(r.get('perf') or {}).get('step_ms') for r in records]
  else:
    raw = [(r.get('metrics') or {}).get(metric) for r in records]
  return [float(v) for v in raw if isinstance(v, (int, float)) and not isinstance(v, bool)
          and math.isfinite(v)]


def _machines(records) -> set[tuple]:
  return {((r.get('env') or {}).get('cpu'), (r.get('env') or {}).get('device_kind'))
          for r in records}


def _status_text(group) -> str:
  statuses = [r['status'] for r in group]
  return ', '.join(f'{s}×{statuses.count(s)}' if len(group) > 1 else s
                   for s in dict.fromkeys(statuses))


def _status_row(name, first, base_group, new_group) -> Row | None:
  """A row when a side has failed seeds: 'worse' when the new side fails more often."""
  failed = lambda g: sum(r['status'] != 'ok' for r in g) / len(g)
  fb, fn = failed(base_group), failed(new_group)
  if fb == 0 and fn == 0:
    return None
  v = 'worse' if fn > fb else 'better' if fn < fb else 'same'
  errors = [r.get('error') for r in new_group + base_group
            if r['status'] != 'ok' and r.get('error')]
  note = f'base {_status_text(base_group)}; new {_status_text(new_group)}'
  if errors:
    note += f': {str(errors[0]).strip().splitlines()[0][:120]}'
  return Row(name, first['arch'], first['task'], 'status', None, None, len(base_group), None,
             None, len(new_group), None, None, 'status', v, note)


def _metrics_of(group) -> list[tuple[str, bool]]:
  """(metric, higher_is_better): the task's headline metric, then eval/loss."""
  record = next((r for r in group if metrics.task_spec(r)), group[0])
  headline = metrics.headline_metric(record)
  out = []
  if headline:
    out.append((headline, metrics.higher_is_better(headline, metrics.task_spec(record))))
  if headline != 'eval/loss':
    out.append(('eval/loss', metrics.higher_is_better('eval/loss')))
  return out


def _metric_row(name, first, metric, higher, base_ok, new_ok, one_seed: list) -> Row | None:
  base, new = _values(base_ok, metric), _values(new_ok, metric)
  if not base and not new:
    return None
  if not base or not new:
    missing = 'base' if not base else 'new'
    return Row(name, first['arch'], first['task'], metric, *_row_stats(base, new), None, None,
               '', 'not comparable', f'no {metric} in {missing}', higher)
  (bm, bs, nb, nm, ns, nn) = _row_stats(base, new)
  log_scale = False
  if metric == TIMING_METRIC:
    tol, source = timing_tolerance(base_ok, new_ok, bm)
  else:
    tol, source, log_scale = metric_tolerance(metric, base, new)
    if nb < 2 or nn < 2:
      one_seed.append(name)
  row = Row(name, first['arch'], first['task'], metric, bm, bs, nb, nm, ns, nn, nm - bm, tol,
            source, verdict(bm, nm, tol, higher, log_scale), higher_is_better=higher,
            log_scale=log_scale)
  if metric == TIMING_METRIC:
    row.ratio = nm / bm if bm else None
    if _machines(base_ok) != _machines(new_ok):
      row.verdict, row.note = 'not comparable', DIFFERENT_MACHINES
  return row


def _shared_level(row: Row, record) -> str | None:
  """The level both values of an unbounded metric sit at (metrics.level), where that
  level is `solved` or `at chance` and they are within a factor SAME_LEVEL_MAX_RATIO of
  each other; else None. (`partial` spans from the solved threshold to near the
  baseline, where a factor 6 would be a real change.)"""
  ratio = None if metrics.is_bounded(row.metric) else metrics.log_ratio(row.new, row.base)
  if ratio is None or abs(ratio) > math.log(SAME_LEVEL_MAX_RATIO):
    return None
  spec = metrics.task_spec(record)
  solved = spec.get('solved') if spec.get('metric') == row.metric else None
  baselines = metrics.trivial_baselines(record.get('metrics') or {}, row.metric)
  levels = {metrics.level(v, baselines, solved, row.metric, row.higher_is_better)
            for v in (row.base, row.new)}
  shared = levels.pop() if len(levels) == 1 else None
  return shared if shared in (metrics.SOLVED, metrics.AT_CHANCE) else None


def _row_stats(base, new):
  bm, bs = _stats(base) if base else (None, None)
  nm, ns = _stats(new) if new else (None, None)
  return bm, bs, len(base), nm, ns, len(new)


def compare(base_records, new_records, *, timing: bool = True) -> Comparison:
  """Every cell of both runs, matched without the seed; see the module docstring.
  `timing=False` leaves step times out (runs from different machines, where even the same
  machine kind differs by up to 2x)."""
  base_groups, new_groups = _groups(base_records), _groups(new_records)
  names = _display_names({**new_groups, **base_groups})
  rows: list[Row] = []
  one_seed: list[str] = []
  machines_differ = []
  for key, base_group in base_groups.items():
    new_group = new_groups.get(key)
    if new_group is None:
      continue
    first = base_group[0]
    name = names[key] + records_lib.partial_view_mark(base_group + new_group)
    status = _status_row(name, first, base_group, new_group)
    if status:
      rows.append(status)
    base_ok, new_ok = _ok(base_group), _ok(new_group)
    if not base_ok or not new_ok:
      continue
    judged = _metrics_of(base_ok) + ([(TIMING_METRIC, False)] if timing else [])
    for i, (metric, higher) in enumerate(judged):
      row = _metric_row(name, first, metric, higher, base_ok, new_ok, one_seed)
      secondary = i > 0 and metric != TIMING_METRIC
      if (row and row.verdict in ('better', 'worse') and min(row.n_base, row.n_new) < 2
          and metric != TIMING_METRIC):
        if secondary:
          row.verdict, row.note = 'not judged', NOT_JUDGED_NOTE
        elif max(row.n_base, row.n_new) < 2 and (shared := _shared_level(row, first)):
          row.verdict, row.note = 'not judged', SAME_LEVEL_NOTE.format(level=shared)
      if row:
        rows.append(row)
        if row.note == DIFFERENT_MACHINES:
          machines_differ.append((_machines(base_ok), _machines(new_ok)))
  warnings = []
  if any(records_lib.PARTIAL_VIEW_MARK in r.cell for r in rows):
    warnings.append(records_lib.PARTIAL_VIEW_NOTE + '.')
  if one_seed:
    warnings.append(ONE_SEED_WARNING.format(n=len(one_seed)))
  if machines_differ:
    describe = lambda ms: ' + '.join(sorted(f'{cpu} ({kind})' for cpu, kind in ms))
    b, n = machines_differ[0]
    warnings.append(f'timing: base ran on {describe(b)}, new on {describe(n)}: different '
                    f'machines, step times not comparable ({len(machines_differ)} cell(s)); '
                    'compare with timing=False across machines.')
  return Comparison(
      rows=rows,
      only_in_base=[names[k] for k in base_groups if k not in new_groups],
      only_in_new=[names[k] for k in new_groups if k not in base_groups],
      warnings=warnings)


# ---------------------------------------------------------------------------------------
# Output.

def _fmt_for(metric: str) -> str:
  if metric == TIMING_METRIC:
    return '{:.2f}'
  return metrics.value_format(metric)


def _value_text(mean, std, n, fmt) -> str:
  if mean is None:
    return '—'
  text = fmt.format(mean)
  return f'{text} ± {fmt.format(std)}' if n > 1 and std is not None else text


def _table(rows: list[Row], timing: bool) -> str:
  header = ['cell', 'base', 'new'] + (['new/base'] if timing else []) + [
      'diff', 'tolerance', 'verdict']
  notes = any(r.note for r in rows)
  header += ['note'] if notes else []
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in rows:
    fmt = _fmt_for(r.metric)
    cells = [r.cell, _value_text(r.base, r.base_std, r.n_base, fmt),
             _value_text(r.new, r.new_std, r.n_new, fmt)]
    if timing:
      cells.append('—' if r.ratio is None else f'{r.ratio:.2f}×')
    cells += ['—' if r.diff is None else fmt.replace('{:', '{:+').format(r.diff),
              _tolerance_text(r),
              f'**{r.verdict}**' if r.verdict == 'worse' else r.verdict]
    cells += [r.note] if notes else []
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def _tolerance_text(r: Row) -> str:
  if r.tolerance is None:
    return '—'
  band = f'×/÷{math.exp(r.tolerance):.3g}' if r.log_scale else f'±{r.tolerance:.2g}'
  return f'{band} ({r.tolerance_source})'


def _title(metric: str, higher: bool | None) -> str:
  arrow = '' if higher is None else (' ↑' if higher else ' ↓')
  return f'{metrics.label(metric) or metric}{arrow}'


def to_markdown(comparison: Comparison) -> str:
  """Tables (the headline metric per task, held-out loss, step time, failures), then the
  cells on one side only, a summary line naming the regressions, and the warnings."""
  rows = comparison.rows
  status = [r for r in rows if r.metric == 'status']
  timing = [r for r in rows if r.metric == TIMING_METRIC]
  loss = [r for r in rows if r.metric == 'eval/loss']
  headline = [r for r in rows if r.metric not in ('status', TIMING_METRIC, 'eval/loss')]
  parts = ['# Comparison: base → new']
  for task, metric in dict.fromkeys((r.task, r.metric) for r in headline):
    group = [r for r in headline if (r.task, r.metric) == (task, metric)]
    parts.append(f'## {task}: {_title(metric, group[0].higher_is_better)}\n\n'
                 + _table(group, timing=False))
  if loss:
    parts.append(f'## Held-out loss ↓\n\n{_table(loss, timing=False)}')
  if timing:
    parts.append(f'## Step time (ms) ↓\n\n{_table(timing, timing=True)}')
  if status:
    lines = ['| cell | seeds | verdict | statuses |', '|---|---|---|---|']
    lines += [f'| {r.cell} | {r.n_base}+{r.n_new} | {r.verdict} | {r.note} |' for r in status]
    parts.append('## Failed cells\n\n' + '\n'.join(lines))
  for side, cells in (('base', comparison.only_in_base), ('new', comparison.only_in_new)):
    if cells:
      parts.append(f'Only in {side} ({len(cells)}): ' + ', '.join(cells))
  counts = ', '.join(f'{n} {v}' for v, n in comparison.counts().items()) or 'nothing compared'
  regressed = comparison.regressions
  summary = f'**Summary:** {counts}. '
  summary += ('Regressions: ' + ', '.join(f'{r.cell} ({r.metric})' for r in regressed) + '.'
              if regressed else 'No regressions.')
  parts.append(summary)
  if comparison.warnings:
    parts.append('Warnings:\n' + '\n'.join(f'- {w}' for w in comparison.warnings))
  return '\n\n'.join(parts) + '\n'


def to_json(comparison: Comparison) -> dict[str, Any]:
  return {
      'rows': [dataclasses.asdict(r) for r in comparison.rows],
      'only_in_base': list(comparison.only_in_base),
      'only_in_new': list(comparison.only_in_new),
      'warnings': list(comparison.warnings),
      'counts': comparison.counts(),
      'regressions': [{'cell': r.cell, 'metric': r.metric} for r in comparison.regressions],
      'exit_code': comparison.exit_code,
  }


def write(out_dir: pathlib.Path, comparison: Comparison) -> str:
  """Write the comparison's Markdown to out_dir/comparison.md (whole or not at all), where
  report.html shows it; returns the text."""
  text = to_markdown(comparison)
  files.write_atomically(pathlib.Path(out_dir) / FILE_MD, text)
  return text
