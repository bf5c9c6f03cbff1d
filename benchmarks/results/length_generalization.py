"""The length-generalisation study (Cell.eval_lengths, the `lengths` evaluator), from the
records with length/<L>/<metric> and ood/<metric> metrics: report section `length`.

A table per task of the metric at each evaluation length and its mean beyond training, and
a plot, `length_generalization_<task>.png`: the metric (accuracy) against the evaluation
length, one line per architecture (mean over seeds, a light band from the lowest to the
highest seed), the training length as a dashed vertical line and the task's constant
baseline, where recorded, as a dotted horizontal one.
"""
from __future__ import annotations

import pathlib
import statistics

from archbench.benchmarks.results import metrics, plots, sections, tables
from archbench.benchmarks.results import records as records_lib

HEADING = 'Length generalisation: accuracy per evaluation length'


def _asked_lengths(record) -> list[int]:
  """The evaluation lengths a record's cell asked for (a failed cell records none)."""
  return [int(n) for n in ((record.get('config') or {}).get('cell') or {}).get('eval_lengths')
          or ()]


def _length_metrics(record) -> dict[int, set[str]]:
  return metrics.lengths_of(record.get('metrics', {}))


def trained_range(record) -> str:
  """The training lengths of a record's task: 'min..max' for a task drawing lengths in a
  range (min_length), else the length."""
  params = (record.get('config') or {}).get('task') or {}
  low, high = params.get('min_length'), params.get('length')
  return f'{low}..{high}' if low is not None and low != high else str(high)


def groups_by_task(records) -> dict[str, dict[tuple[str, str], list[dict]]]:
  """task -> (row, trained range) -> the records (seeds) of that row: every record with
  per-length metrics, and failed ones whose cell asked for evaluation lengths."""
  row, _ = tables.row_column_labels(records)
  out: dict = {}
  for r in records:
    if _length_metrics(r) or (r['status'] != 'ok' and _asked_lengths(r)):
      out.setdefault(r['task'], {}).setdefault((row(r), trained_range(r)), []).append(r)
  return out


def shown_metric(groups: dict[tuple[str, str], list[dict]]) -> str:
  """The metric a task's table and plot show: accuracy where recorded, else the task's
  headline metric (its name without 'eval/')."""
  names = set().union(*(n for g in groups.values() for r in g
                        for n in _length_metrics(r).values()))
  if 'accuracy' in names or not names:
    return 'accuracy'
  headline = next((metrics.headline_metric(r) for g in groups.values() for r in g
                   if metrics.headline_metric(r)), None)
  name = headline.split('/', 1)[-1] if headline else None
  return name if name in names else sorted(names)[0]


def evaluated_lengths(groups: dict[tuple[str, str], list[dict]]) -> list[int]:
  return sorted({n for g in groups.values() for r in g
                 for n in [*_length_metrics(r), *_asked_lengths(r)]})


def table(records, task: str) -> str:
  """Rows: architectures (and their training lengths where a run has several); columns: the
  number of ok seeds, the metric at each evaluation length, and its mean over the lengths
  beyond training (mean ± std over seeds, as the other tables)."""
  groups = groups_by_task(records)[task]
  name = shown_metric(groups)
  lengths = evaluated_lengths(groups)
  header = ['arch', 'trained', 'seeds'] + [f'L={n}' for n in lengths] + ['OOD mean']
  body = []
  for (a, trained), group in groups.items():
    seeds = str(sum(r['status'] == 'ok' for r in group))
    body.append([a, trained, seeds]
                + [tables.cell_text(group, metrics.length_key(n, name), False, interval=True)
                   for n in lengths]
                + [tables.cell_text(group, metrics.ood_key(name), False, interval=True)])
  return records_lib.markdown_table(header, body)


def _spec(groups) -> dict:
  return next((metrics.task_spec(r) for g in groups.values() for r in g
               if metrics.task_spec(r)), {})


def _baselines(groups, name: str) -> list[float]:
  key = metrics.baseline_key(metrics.eval_key(name))
  return tables.ordered(r['metrics'][key] for g in groups.values() for r in g
                        if r['metrics'].get(key) is not None)


def _label(name: str) -> str:
  return metrics.label(metrics.eval_key(name)) or name


def markdown(records) -> list[str]:
  """The summary's length-generalisation part: one table per task; empty for runs whose
  records have no per-length metrics."""
  by_task = groups_by_task(records)
  if not by_task:
    return []
  parts = [f'## {HEADING}',
           'Held-out metric of models trained at the lengths in *trained* and evaluated on '
           'sets whose sequences all have length L; OOD mean: the mean over the lengths L '
           'beyond the longest trained length; seeds: ok cells; mean ± std over seeds.']
  for task, groups in by_task.items():
    name = shown_metric(groups)
    label = _label(name)
    arrow = metrics.arrow(metrics.eval_key(name), _spec(groups))
    notes = [f'{label[:1].upper()}{label[1:]} {arrow} at each evaluation length']
    baselines = _baselines(groups, name)
    if baselines:
      notes.append('constant baseline at the training length: '
                   + ', '.join(metrics.value_format(name).format(b) for b in baselines))
    parts += [f'### Length generalisation: {task}', '; '.join(notes) + '.',
              table(records, task)]
  return parts


def _trained_length(record) -> int | None:
  return ((record.get('config') or {}).get('task') or {}).get('length')


def plot(records, task: str, path: pathlib.Path) -> None:
  groups = groups_by_task(records)[task]
  name = shown_metric(groups)
  several = len({trained for _, trained in groups}) > 1
  plt = plots.pyplot()
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for (arch, trained), group in groups.items():
    lengths = evaluated_lengths({(arch, trained): group})
    key_at = {n: metrics.length_key(n, name) for n in lengths}
    points = [(n, [r['metrics'][key_at[n]] for r in group if r['status'] == 'ok'
                   and r['metrics'].get(key_at[n]) is not None]) for n in lengths]
    points = [(n, values) for n, values in points if values]
    if not points:
      continue
    xs = [n for n, _ in points]
    label = f'{arch} (trained {trained})' if several else arch
    (line,) = ax.plot(xs, [statistics.fmean(v) for _, v in points], marker='o',
                      markersize=3.5, linewidth=1.6, label=label)
    if len(group) > 1:
      ax.fill_between(xs, [min(v) for _, v in points], [max(v) for _, v in points],
                      color=line.get_color(), alpha=0.15, linewidth=0)
  trained_lengths = sorted({n for g in groups.values() for r in g
                            if (n := _trained_length(r)) is not None})
  for i, n in enumerate(trained_lengths):
    ax.axvline(n, color='black', linestyle='--', linewidth=1,
               label='training length' if i == 0 else None)
  baselines = _baselines(groups, name)
  if baselines:
    ax.axhline(baselines[0], color='grey', linestyle=':', label='baseline')
  evaluated = evaluated_lengths(groups)
  if len(evaluated) <= 12:
    ax.set_xticks(evaluated, [str(n) for n in evaluated])
  if metrics.is_bounded(name):
    ax.set_ylim(-0.02, 1.02)
  arrow = metrics.arrow(metrics.eval_key(name), _spec(groups))
  ax.set_xlabel('evaluation length L (every sequence of the set has length L)')
  ax.set_ylabel(f'held-out {_label(name)} {arrow}')
  ax.set_title(f'{task}: length generalisation')
  plots.save(plt, fig, ax, path)
  plots.shrink_png(path)


def write_plots(out_dir: pathlib.Path, records) -> list[pathlib.Path]:
  written = []
  for task in groups_by_task(records):
    path = out_dir / f'length_generalization_{task}.png'
    plot(records, task, path)
    written.append(path)
  return written


SECTION = sections.register(sections.Section('length', markdown, write_plots))
