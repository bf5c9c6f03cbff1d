"""The grid every study's tables share, and the core tables drawn on it.

Rows are architectures (with the size when a run mixes sizes), columns are tasks (with the
parameters that vary between cells, e.g. the length, when a run sweeps them). Seeds of the
same cell are aggregated as the mean with its 95% t interval in the core tables (the
headline metric and the held-out loss per architecture and task: significance.py), as
mean ± std in the studies' tables; the performance of the training step as medians.
"""
from __future__ import annotations

import statistics

from archbench.benchmarks.results import metrics, significance
from archbench.benchmarks.results import records as records_lib

PERF_COLUMNS = [  # (key, header, scale, format)
    ('params', 'params', 1, '{:,.0f}'),
    ('compile_s', 'compile s', 1, '{:.2f}'),
    ('step_ms', 'step ms', 1, '{:.2f}'),
    ('infer_ms', 'forward ms', 1, '{:.2f}'),  # cost-sweep cells only
    ('examples_per_s', 'examples/s', 1, '{:,.0f}'),
    ('tokens_per_s', 'tokens/s', 1, '{:,.0f}'),
    ('flops_per_step', 'GFLOP/step', 1e-9, '{:.3f}'),
    ('mfu', 'MFU %', 100, '{:.2f}'),
    ('peak_bytes', 'peak MiB', 1 / 2**20, '{:.1f}'),
]


def ordered(values) -> list:
  """The distinct values, in order of first appearance."""
  return list(dict.fromkeys(values))


def _varying(records, name_of, settings_of) -> dict[str, list[str]]:
  """name -> the settings whose value differs between the records of that name."""
  seen: dict[str, dict[str, set]] = {}
  for r in records:
    for k, v in (settings_of(r) or {}).items():
      seen.setdefault(name_of(r), {}).setdefault(k, set()).add(repr(v))
  return {t: sorted(k for k, vals in ps.items() if len(vals) > 1) for t, ps in seen.items()}


def _varying_params(records) -> dict[str, list[str]]:
  """task -> parameter names whose value differs between that task's records."""
  return _varying(records, lambda r: r['task'], lambda r: r.get('config', {}).get('task'))


def _arch_overrides(record) -> dict:
  """The backbone settings a row is labelled with: the record's overrides less those a
  tuning run selected for it (each architecture's own tuned values are part of its
  treatment, not a variant of it; config.settings names them)."""
  config = record.get('config') or {}
  settings = config.get('settings') or {}
  tuned = (settings.get('settings') or {}).get('arch') or {} \
      if settings.get('from') == 'tuned' else {}
  return {k: v for k, v in (config.get('arch_overrides') or {}).items() if k not in tuned}


def row_column_labels(records):
  """Row: the architecture, with its size and batch size where the run has several of
  them (a cost sweep over batch sizes) and the backbone settings its variants differ in
  (e.g. positional encodings); column: the task with its varying parameters."""
  sizes = {r['size'] for r in records}
  batch_sizes = {records_lib.batch_size_of(r) for r in records}
  varying = _varying_params(records)
  variants = _varying(records, lambda r: r['arch'], _arch_overrides)

  def row(r):
    extra = ([r['size']] if len(sizes) > 1 else []) + \
        ([f'batch {records_lib.batch_size_of(r)}'] if len(batch_sizes) > 1 else []) + \
        [f'{k}={_arch_overrides(r).get(k)}' for k in variants.get(r['arch'], [])]
    return f'{r["arch"]} ({", ".join(extra)})' if extra else r['arch']

  def col(r):
    params = r.get('config', {}).get('task') or {}
    extra = ','.join(f'{k}={params.get(k)}' for k in varying.get(r['task'], []))
    return f'{r["task"]} [{extra}]' if extra else r['task']
  return row, col


def spread_text(values: list[float], fmt: str = '{:.3g}') -> str:
  """'mean ± std' of the values ('mean' for one, '' for none)."""
  if not values:
    return ''
  mean = statistics.fmean(values)
  if len(values) == 1:
    return fmt.format(mean)
  return f'{fmt.format(mean)} ± {fmt.format(statistics.stdev(values))}'


def cell_text(group: list[dict], key: str, mark_solved: bool, interval: bool = False) -> str:
  """One table cell: `key` over a group's ok seeds (mean ± std; with `interval`, the mean
  [95% t interval] n=seeds, or the single-seed mark), the statuses of failed ones, ✓ (with
  `mark_solved`) where every ok seed solved the task, and † where the model cannot see its
  whole input."""
  ok = [r['metrics'][key] for r in group
        if r['status'] == 'ok' and r['metrics'].get(key) is not None]
  fmt = metrics.value_format(key)
  text = significance.interval_text(ok, fmt, key) if interval else spread_text(ok, fmt)
  failed = sorted({r['status'] for r in group if r['status'] != 'ok'})
  if failed:
    text = (text + ' ' if text else '') + f'({"/".join(failed)})'
  if mark_solved and ok and all(r['metrics'].get('solved') for r in group
                                if r['status'] == 'ok'):
    text += ' ✓'
  return (text or '—') + records_lib.partial_view_mark(group)


def grouped(records):
  """(row labels, column labels, {(row, column): records}), in order of appearance."""
  row, col = row_column_labels(records)
  groups: dict[tuple, list] = {}
  for r in records:
    groups.setdefault((row(r), col(r)), []).append(r)
  return ordered(a for a, _ in groups), ordered(c for _, c in groups), groups


def _column_header(column: str, key: str | None, spec: dict) -> str:
  if key is None:
    return f'{column} (None)'
  return f'{column} ({metrics.label(key) or key} {metrics.arrow(key, spec)})'


def metric_table(records, key_of=None) -> str:
  """One row per architecture, one column per task: by default the task's headline metric
  (marked ✓ where solved), else the metric `key_of[column]`; the baseline comes first.
  Cells: the mean over seeds with its 95% t interval."""
  rows, cols, groups = grouped(records)
  mark_solved = key_of is None
  if key_of is None:
    key_of = {c: next((metrics.headline_metric(r) for (_, c2), g in groups.items() if c2 == c
                       for r in g if metrics.headline_metric(r)), None) for c in cols}
  spec_of = {c: next((metrics.task_spec(r) for (_, c2), g in groups.items() if c2 == c
                      for r in g if metrics.task_spec(r)), {}) for c in cols}

  def baseline(c):
    key = metrics.baseline_key(key_of[c])
    value = next((r['metrics'][key] for (_, c2), g in groups.items() if c2 == c for r in g
                  if r['metrics'].get(key) is not None), None)
    return '' if value is None else spread_text([value], metrics.value_format(key_of[c]))
  header = ['arch'] + [_column_header(c, key_of[c], spec_of[c]) for c in cols]
  body = [[a] + [cell_text(groups[(a, c)], key_of[c], mark_solved, interval=True)
                 if (a, c) in groups else ''
                 for c in cols] for a in rows]
  return records_lib.markdown_table(header, [['*baseline*'] + [baseline(c) for c in cols]] + body)


def loss_table(records) -> str:
  """The held-out loss of every architecture and task."""
  return metric_table(records, key_of={c: 'eval/loss' for c in grouped(records)[1]})


def perf_table(records) -> str:
  """Medians over each group's cells; a column no record has a value for is left out."""
  _, _, groups = grouped(records)
  columns = [column for column in PERF_COLUMNS
             if any(r.get('perf', {}).get(column[0]) is not None for r in records)]
  header = ['arch', 'task', 'status'] + [h for _, h, _, _ in columns]
  body = []
  for (a, c), group in groups.items():
    status = '/'.join(ordered(r['status'] for r in group)) + records_lib.partial_view_mark(group)
    cells = []
    for key, _, scale, fmt in columns:
      values = [r['perf'][key] * scale for r in group if r.get('perf', {}).get(key) is not None]
      cells.append(fmt.format(statistics.median(values)) if values else '—')
    body.append([a, c, status] + cells)
  return records_lib.markdown_table(header, body)
