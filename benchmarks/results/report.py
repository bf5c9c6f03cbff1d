"""Tables from `results.jsonl` alone: `summary.md` (Markdown), `summary.csv` and
`summary.tex` (the same tables as LaTeX booktabs tables, for a paper: markup.py); with the
plots, `report.html` (html_report.py).

Rows are architectures (with the size when a run mixes sizes), columns are tasks (with
the parameters that vary between cells, e.g. the length, when a run sweeps them). Seeds
of the same cell are aggregated as mean ± std. Runs whose cells were evaluated at other
lengths than they were trained at (Cell.eval_lengths) get a table per task of the metric
at each evaluation length and its mean beyond training.
"""
from __future__ import annotations

import csv
import io
import math
import os
import pathlib
import statistics
from typing import Any

from archbench.benchmarks.results import markup
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import scaling
from archbench.benchmarks.results import sections

METRIC_LABELS = {'eval/accuracy': 'accuracy', 'eval/mse': 'MSE', 'eval/loss': 'loss',
                 'eval/exact_match': 'exact match', 'eval/bits_per_char': 'bits/char'}
LOWER_IS_BETTER = ('mse', 'mae', 'loss', 'bits_per_char')  # metric key suffixes
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


def headline_metric(record) -> str | None:
  """The task's headline metric, as its spec named it (records of failed cells that never
  built their task fall back to what their metrics hold)."""
  named = (record.get('config', {}).get('task_spec') or {}).get('metric')
  if named:
    return named
  metrics = record.get('metrics', {})
  for key in ('eval/accuracy', 'eval/mse', 'eval/loss'):
    if f'baseline/{key}' in metrics or (key in metrics and key != 'eval/loss'):
      return key
  return 'eval/loss' if 'eval/loss' in metrics else None


def _varying_params(records) -> dict[str, list[str]]:
  """task -> parameter names whose value differs between that task's records."""
  seen: dict[str, dict[str, set]] = {}
  for r in records:
    for k, v in (r.get('config', {}).get('task') or {}).items():
      seen.setdefault(r['task'], {}).setdefault(k, set()).add(repr(v))
  return {t: sorted(k for k, vals in ps.items() if len(vals) > 1) for t, ps in seen.items()}


def row_column_labels(records):
  """Row: the architecture, with its size and batch size where the run has several of
  them (a cost sweep over batch sizes); column: the task with its varying parameters."""
  sizes = {r['size'] for r in records}
  batch_sizes = {scaling.batch_size_of(r) for r in records}
  varying = _varying_params(records)

  def row(r):
    extra = ([r['size']] if len(sizes) > 1 else []) + \
        ([f'batch {scaling.batch_size_of(r)}'] if len(batch_sizes) > 1 else [])
    return f'{r["arch"]} ({", ".join(extra)})' if extra else r['arch']

  def col(r):
    params = r.get('config', {}).get('task') or {}
    extra = ','.join(f'{k}={params.get(k)}' for k in varying.get(r['task'], []))
    return f'{r["task"]} [{extra}]' if extra else r['task']
  return row, col


def _ordered(values):
  return list(dict.fromkeys(values))


def _fmt(values: list[float], fmt: str = '{:.3g}') -> str:
  if not values:
    return ''
  mean = statistics.fmean(values)
  if len(values) == 1:
    return fmt.format(mean)
  return f'{fmt.format(mean)} ± {fmt.format(statistics.stdev(values))}'


def _metric_format(key: str | None) -> str:
  """Accuracies and exact-match rates to three decimals; losses and errors to three
  significant digits, since they span decades (0.167 at the baseline, 1e-5 solved)."""
  return '{:.3f}' if key and key.endswith(('accuracy', 'exact_match')) else '{:.3g}'


def _cell_text(group: list[dict], key: str, mark_solved: bool) -> str:
  ok = [r['metrics'][key] for r in group
        if r['status'] == 'ok' and r['metrics'].get(key) is not None]
  text = _fmt(ok, _metric_format(key))
  failed = sorted({r['status'] for r in group if r['status'] != 'ok'})
  if failed:
    text = (text + ' ' if text else '') + f'({"/".join(failed)})'
  if mark_solved and ok and all(r['metrics'].get('solved') for r in group
                                if r['status'] == 'ok'):
    text += ' ✓'
  return text or '—'


def _grouped(records):
  """(row labels, column labels, {(row, column): records}), in order of appearance."""
  row, col = row_column_labels(records)
  groups: dict[tuple, list] = {}
  for r in records:
    groups.setdefault((row(r), col(r)), []).append(r)
  return _ordered(a for a, _ in groups), _ordered(c for _, c in groups), groups


def _column_header(column: str, key: str | None) -> str:
  if key is None:
    return f'{column} (None)'
  arrow = '↓' if key.endswith(LOWER_IS_BETTER) else '↑'
  return f'{column} ({METRIC_LABELS.get(key, key)} {arrow})'


def metric_table(records, key_of=None) -> str:
  """One row per architecture, one column per task: by default the task's headline metric
  (marked ✓ where solved), else the metric `key_of[column]`; the baseline comes first."""
  rows, cols, groups = _grouped(records)
  mark_solved = key_of is None
  if key_of is None:
    key_of = {c: next((headline_metric(r) for (_, c2), g in groups.items() if c2 == c for r in g
                       if headline_metric(r)), None) for c in cols}

  def baseline(c):
    key = f'baseline/{key_of[c]}'
    value = next((r['metrics'][key] for (_, c2), g in groups.items() if c2 == c for r in g
                  if r['metrics'].get(key) is not None), None)
    return '' if value is None else _fmt([value], _metric_format(key_of[c]))
  header = ['arch'] + [_column_header(c, key_of[c]) for c in cols]
  body = [[a] + [_cell_text(groups[(a, c)], key_of[c], mark_solved) if (a, c) in groups else ''
                 for c in cols] for a in rows]
  return records_lib.markdown_table(header, [['*baseline*'] + [baseline(c) for c in cols]] + body)


def perf_table(records) -> str:
  """Medians over each group's cells; a column no record has a value for is left out."""
  _, _, groups = _grouped(records)
  columns = [column for column in PERF_COLUMNS
             if any(r.get('perf', {}).get(column[0]) is not None for r in records)]
  header = ['arch', 'task', 'status'] + [h for _, h, _, _ in columns]
  body = []
  for (a, c), group in groups.items():
    status = '/'.join(_ordered(r['status'] for r in group))
    cells = []
    for key, _, scale, fmt in columns:
      values = [r['perf'][key] * scale for r in group if r.get('perf', {}).get(key) is not None]
      cells.append(fmt.format(statistics.median(values)) if values else '—')
    body.append([a, c, status] + cells)
  return records_lib.markdown_table(header, body)


# ---------------------------------------------------------------------------------------
# Long-range dependency probes (benchmarks/probes/lrd.py): records with lrd/ metrics.

def sweep_points(records) -> dict[str, dict[str, dict[int, list[dict]]]]:
  """task -> row -> length -> records, for the points of accuracy-versus-length sweeps."""
  row, _ = row_column_labels(records)
  out: dict = {}
  for r in records:
    length = r['metrics'].get('lrd/length')
    if length is not None:
      out.setdefault(r['task'], {}).setdefault(row(r), {}).setdefault(length, []).append(r)
  return out


def _solved_at(group: list[dict]) -> bool:
  """A sweep point is solved when the mean over its ok seeds meets the task's threshold
  (a failed cell counts as unsolved)."""
  ok = [r for r in group if r['status'] == 'ok']
  key = headline_metric(group[0])
  spec = group[0].get('config', {}).get('task_spec') or {}
  if not ok or len(ok) < len(group) or key is None or 'solved' not in spec:
    return False
  mean = statistics.fmean(r['metrics'][key] for r in ok)
  return mean >= spec['solved'] if spec.get('higher_is_better', True) else mean <= spec['solved']


def longest_solved(records) -> dict[tuple[str, str], int | None]:
  """(row, task) -> the longest swept length at which the task is solved, or None."""
  return {(a, task): max((n for n, g in points.items() if _solved_at(g)), default=None)
          for task, by_arch in sweep_points(records).items() for a, points in by_arch.items()}


def longest_solved_table(records) -> str:
  sweeps = sweep_points(records)
  best = longest_solved(records)
  tasks = list(sweeps)
  rows = _ordered(a for t in tasks for a in sweeps[t])

  def text(a, t):
    if a not in sweeps[t]:
      return ''
    n = best[(a, t)]
    return '—' if n is None else (f'≥{n}' if n == max(sweeps[t][a]) else str(n))
  lengths = {t: sorted({n for points in sweeps[t].values() for n in points}) for t in tasks}
  header = ['arch'] + [f'{t} (of {", ".join(map(str, lengths[t]))})' for t in tasks]
  return records_lib.markdown_table(header, [[a] + [text(a, t) for t in tasks] for a in rows])


def length_table(records, task: str) -> str:
  by_arch = sweep_points(records)[task]
  lengths = sorted({n for points in by_arch.values() for n in points})
  key = headline_metric(next(iter(next(iter(by_arch.values())).values()))[0])
  header = ['arch'] + [f'L={n}' for n in lengths]
  body = [[a] + [_cell_text(points[n], key, True) if n in points else '' for n in lengths]
          for a, points in by_arch.items()]
  return records_lib.markdown_table(header, body)


GRADIENT_FIGURES = [('rate', 'decay rate /step', '{:.3f}'), ('horizon', 'horizon', '{:.0f}'),
                    ('far_near', 'far/near', '{:.2g}')]


def gradient_groups(records, task: str, length: int) -> dict[str, list[dict]]:
  """row -> the records of `task` at `length` that hold gradient curves (one per seed)."""
  row, _ = row_column_labels(records)
  groups: dict[str, list] = {}
  for r in records:
    if (r['task'], r['metrics'].get('lrd/length')) == (task, length) and \
        r['metrics'].get('lrd/grad_init'):
      groups.setdefault(row(r), []).append(r)
  return groups


def gradient_table(records, task: str, length: int) -> str:
  """Rows: architectures; columns: the curve's figures at init and after training (mean
  over seeds)."""
  groups = gradient_groups(records, task, length)
  header = ['arch'] + [f'{label} ({when})' for when in ('init', 'trained')
                       for _, label, _ in GRADIENT_FIGURES]
  body = []
  for a, group in groups.items():
    cells = []
    for when in ('init', 'trained'):
      for name, _, fmt in GRADIENT_FIGURES:
        values = [r['metrics'][f'lrd/{name}_{when}'] for r in group
                  if r['metrics'].get(f'lrd/{name}_{when}') is not None]
        values = [v for v in values if not math.isnan(v)]
        cells.append(fmt.format(statistics.fmean(values)) if values else '—')
    body.append([a] + cells)
  return records_lib.markdown_table(header, body)


def gradient_probes(records) -> list[tuple[str, int]]:
  """(task, length) pairs that have gradient curves, in order of appearance."""
  return _ordered((r['task'], r['metrics']['lrd/length']) for r in records
                  if r['metrics'].get('lrd/grad_init'))


def lrd_sections(records) -> list[str]:
  """The summary's long-range part; empty for runs without probes."""
  parts = []
  if sweep_points(records):
    parts += ['## Long-range dependencies: longest solved length',
              'The longest swept sequence length (positions the model reads) at which the '
              'task\'s solved threshold is met; ≥ where that is the longest length swept, — '
              'where no length was solved.',
              longest_solved_table(records)]
    for task in sweep_points(records):
      parts += [f'### Accuracy versus length: {task}', length_table(records, task)]
  probes = gradient_probes(records)
  if probes:
    parts += ['## Long-range dependencies: gradient versus distance',
              'Norm of the readout\'s gradient with respect to the input representation k '
              'steps back. decay rate: fitted slope of ln(norm) per step (ln a for a curve '
              '∝ a^k, 0 for no decay); horizon: the farthest k whose norm is ≥ 1e-3 of the '
              'maximum; far/near: mean norm over the farthest quarter of distances over the '
              'nearest quarter.']
    for task, length in probes:
      parts += [f'### {task}, L={length}', gradient_table(records, task, length)]
  return parts


# ---------------------------------------------------------------------------------------
# Length generalisation (Cell.eval_lengths, runner.evaluate_at_lengths): records with
# 'length/<L>/<metric>' and 'ood/<metric>' metrics.

LENGTH_HEADING = 'Length generalisation: accuracy per evaluation length'


def _length_metrics(record) -> dict[int, str]:
  """L -> the metric names recorded at evaluation length L."""
  out: dict[int, set] = {}
  for key in record.get('metrics', {}):
    parts = key.split('/')
    if len(parts) == 3 and parts[0] == 'length' and parts[1].isdigit():
      out.setdefault(int(parts[1]), set()).add(parts[2])
  return out


def _asked_lengths(record) -> list[int]:
  """The evaluation lengths a record's cell asked for (a failed cell records none)."""
  return [int(n) for n in ((record.get('config') or {}).get('cell') or {}).get('eval_lengths')
          or ()]


def trained_range(record) -> str:
  """The training lengths of a record's task: 'min..max' for a task drawing lengths in a
  range (min_length), else the length."""
  params = (record.get('config') or {}).get('task') or {}
  low, high = params.get('min_length'), params.get('length')
  return f'{low}..{high}' if low is not None and low != high else str(high)


def generalisation_groups(records) -> dict[str, dict[tuple[str, str], list[dict]]]:
  """task -> (row, trained range) -> the records (seeds) of that row: every record with
  per-length metrics, and failed ones whose cell asked for evaluation lengths."""
  row, _ = row_column_labels(records)
  out: dict = {}
  for r in records:
    if _length_metrics(r) or (r['status'] != 'ok' and _asked_lengths(r)):
      out.setdefault(r['task'], {}).setdefault((row(r), trained_range(r)), []).append(r)
  return out


def generalisation_metric(groups: dict[tuple[str, str], list[dict]]) -> str:
  """The metric a task's table and plot show: accuracy where recorded, else the task's
  headline metric (its name without 'eval/')."""
  names = set().union(*(n for g in groups.values() for r in g
                        for n in _length_metrics(r).values()))
  if 'accuracy' in names or not names:
    return 'accuracy'
  headline = next((headline_metric(r) for g in groups.values() for r in g
                   if headline_metric(r)), None)
  name = headline.split('/', 1)[-1] if headline else None
  return name if name in names else sorted(names)[0]


def generalisation_lengths(groups: dict[tuple[str, str], list[dict]]) -> list[int]:
  return sorted({n for g in groups.values() for r in g
                 for n in [*_length_metrics(r), *_asked_lengths(r)]})


def generalisation_table(records, task: str) -> str:
  """Rows: architectures (and their training lengths where a run has several); columns: the
  number of ok seeds, the metric at each evaluation length, and its mean over the lengths
  beyond training (mean ± std over seeds, as the other tables)."""
  groups = generalisation_groups(records)[task]
  name = generalisation_metric(groups)
  lengths = generalisation_lengths(groups)
  header = ['arch', 'trained', 'seeds'] + [f'L={n}' for n in lengths] + ['OOD mean']
  body = []
  for (a, trained), group in groups.items():
    seeds = str(sum(r['status'] == 'ok' for r in group))
    body.append([a, trained, seeds]
                + [_cell_text(group, f'length/{n}/{name}', False) for n in lengths]
                + [_cell_text(group, f'ood/{name}', False)])
  return records_lib.markdown_table(header, body)


def generalisation_sections(records) -> list[str]:
  """The summary's length-generalisation part: one table per task; empty for runs whose
  records have no per-length metrics."""
  by_task = generalisation_groups(records)
  if not by_task:
    return []
  parts = [f'## {LENGTH_HEADING}',
           'Held-out metric of models trained at the lengths in *trained* and evaluated on '
           'sets whose sequences all have length L; OOD mean: the mean over the lengths L '
           'beyond the longest trained length; seeds: ok cells; mean ± std over seeds.']
  for task, groups in by_task.items():
    name = generalisation_metric(groups)
    label = METRIC_LABELS.get(f'eval/{name}', name)
    notes = [f'{label[:1].upper()}{label[1:]} '
             f'{"↓" if name.endswith(LOWER_IS_BETTER) else "↑"} at each evaluation length']
    baselines = _ordered(r['metrics'][f'baseline/eval/{name}'] for g in groups.values()
                         for r in g if r['metrics'].get(f'baseline/eval/{name}') is not None)
    if baselines:
      notes.append('constant baseline at the training length: '
                   + ', '.join(_metric_format(name).format(b) for b in baselines))
    parts += [f'### Length generalisation: {task}', '; '.join(notes) + '.',
              generalisation_table(records, task)]
  return parts


def summary_markdown(records: list[dict[str, Any]]) -> str:
  if not records:
    return '# archbench summary\n\nNo records.\n'
  first = records[0]
  env = first.get('env', {})
  failed = [r for r in records if r['status'] != 'ok']
  parts = [
      f'# archbench summary: suite `{first["suite"]}`',
      f'{len(records)} cells, {len(records) - len(failed)} ok · run `{first["run_id"]}` · '
      f'{env.get("backend")} ({env.get("device_kind")} ×{env.get("device_count")}), '
      f'{env.get("cpu")} · jax {env.get("jax")}, flax {env.get("flax")} · '
      f'commit {str(env.get("git_commit"))[:12]}',
  ]
  if not all(scaling.is_cost_point(r) for r in records):  # cost points are not evaluated
    parts += [
        '## Accuracy (headline metric on held-out data)',
        '↑ higher is better, ↓ lower is better; ✓ meets the task\'s solved threshold; '
        'mean ± std over seeds.',
        metric_table(records),
        '## Held-out loss',
        metric_table(records, key_of={c: 'eval/loss' for c in _grouped(records)[1]}),
    ]
  parts += [
      *lrd_sections(records),
      *generalisation_sections(records),
      *scaling.sections(records),
      *[block for section in sections.all_sections() for block in section.markdown(records)],
      '## Performance (training step, median over timed windows)',
      perf_table(records),
  ]
  if failed:
    parts += ['## Failed cells'] + [
        f'- `{r["arch"]}/{r["task"]}/{r["size"]}/s{r["seed"]}`: **{r["status"]}** — '
        f'{r.get("error")}' for r in failed]
  return '\n\n'.join(parts) + '\n'


def summary_csv(records: list[dict[str, Any]]) -> str:
  """Long format: one row per record, metrics and perf flattened to columns (curves, i.e.
  list-valued metrics, stay in results.jsonl)."""
  metric_keys = _ordered(k for r in records for k, v in r.get('metrics', {}).items()
                         if not isinstance(v, list))
  perf_keys = _ordered(k for r in records for k in r.get('perf', {}))
  out = io.StringIO()
  writer = csv.writer(out, lineterminator='\n')
  writer.writerow(['run_id', 'suite', 'arch', 'task', 'size', 'seed', 'task_params',
                   'status', 'error'] + metric_keys + [f'perf/{k}' for k in perf_keys])
  for r in records:
    params = ';'.join(f'{k}={v}' for k, v in (r.get('config', {}).get('task') or {}).items())
    writer.writerow([r['run_id'], r['suite'], r['arch'], r['task'], r['size'], r['seed'],
                     params, r['status'], r.get('error') or '']
                    + [r['metrics'].get(k, '') for k in metric_keys]
                    + [r['perf'].get(k, '') for k in perf_keys])
  return out.getvalue()


def summary_latex(records: list[dict[str, Any]]) -> str:
  """summary.md's tables as booktabs tables, each captioned with its heading."""
  first = records[0] if records else {}
  return markup.latex_tables(summary_markdown(records), preamble=(
      f'archbench summary tables: suite {first.get("suite")}, run {first.get("run_id")}; '
      'rebuilt from results.jsonl by `archbench report DIR`.'))


def _write(path: pathlib.Path, text: str) -> None:
  tmp = path.with_suffix(path.suffix + '.tmp')
  tmp.write_text(text, encoding='utf-8')
  os.replace(tmp, path)  # readers never see a half-written summary


def write_summaries(out_dir: pathlib.Path, plots: bool = False) -> list[dict[str, Any]]:
  """(Re)build summary.md, summary.csv and summary.tex from out_dir/results.jsonl, in the
  suite's cell order (parallel workers append records in the order cells finish), and with
  `plots` the PNG plots (plots.py) and report.html, which embeds them with the tables, the
  reproduction verdicts of out_dir/comparison.md if any, and the environment."""
  records = records_lib.load_records(out_dir / 'results.jsonl')
  records.sort(key=lambda r: (r.get('config') or {}).get('cell_index', 0))
  _write(out_dir / 'summary.md', summary_markdown(records))
  _write(out_dir / 'summary.csv', summary_csv(records))
  _write(out_dir / 'summary.tex', summary_latex(records))
  if plots:
    from archbench.benchmarks.results import plots as plots_lib  # matplotlib only when plots are asked for
    from archbench.benchmarks.results import html_report
    written = plots_lib.write_plots(out_dir, records)
    written += [path for section in sections.all_sections() if section.plots is not None
                for path in section.plots(out_dir, records)]
    _write(out_dir / 'report.html',
           html_report.page(records, written, html_report.sections_of(out_dir)))
  return records


def one_line(record) -> str:
  """Progress line for a finished cell."""
  if record['status'] != 'ok':
    return f'{record["status"]}: {record.get("error")}'
  key = headline_metric(record)
  value, base = record['metrics'].get(key), record['metrics'].get(f'baseline/{key}')
  perf = record['perf']
  text = f'ok {key}={value:.4g}' if value is not None else 'ok'
  if base is not None:
    text += f' (baseline {base:.4g})'
  if perf.get('step_ms') is not None:
    text += f', {perf["step_ms"]:.2f} ms/step, compile {perf.get("compile_s", math.nan):.1f} s'
  return text
