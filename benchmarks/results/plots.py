"""PNG plots of the long-range probes, from `results.jsonl` records alone (matplotlib, Agg).

* `gradient_<task>_L<length>.png`: gradient norm against distance, log scale, one line per
  architecture, at initialisation and after training side by side. Each curve is divided
  by its own maximum: absolute norms depend on each model's output scale, the shape of the
  decay is what compares across families.
* `length_<task>.png`: the headline metric against sequence length (log2 axis), one line
  per architecture, with the task's baseline and solved threshold drawn in.
* `length_generalization_<task>.png`: for cells evaluated at lengths other than their
  training length (Cell.eval_lengths), the metric (accuracy) against the evaluation
  length, one line per architecture (mean over seeds, a light band from the lowest to the
  highest seed), the training length as a dashed vertical line and the task's constant
  baseline, where recorded, as a dotted horizontal one.
* `scaling_<task>.png`: cost against length, log-log, for runs with a cost sweep
  (scaling.py).
* `curves_<task>.png`: the training loss against the step (the records' `curves`), one line
  per architecture: the mean over seeds, with a light band from the lowest to the highest
  seed where there are several; one panel per value of a swept parameter (e.g. the
  length), as the summary's columns.
"""
from __future__ import annotations

import math
import pathlib
import statistics

import numpy as np

from archbench.benchmarks.results import report
from archbench.benchmarks.results import scaling

SMALLEST_SHOWN = 1e-12  # relative norms below this (TCN's exact zeros) leave the plot


def _pyplot():
  import matplotlib
  matplotlib.use('Agg')  # files only, no display
  import matplotlib.pyplot as plt
  return plt


def _mean_curve(group: list[dict], key: str) -> np.ndarray | None:
  curves = [np.asarray(r['metrics'][key]) for r in group if r['metrics'].get(key)]
  if not curves:
    return None
  curve = np.mean(curves, axis=0)
  return curve / curve.max() if curve.max() > 0 else None


def plot_gradients(records, task: str, length: int, path: pathlib.Path) -> None:
  groups = report.gradient_groups(records, task, length)
  plt = _pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
  for ax, when in zip(axes, ('init', 'trained')):
    for arch, group in groups.items():
      curve = _mean_curve(group, f'lrd/grad_{when}')
      if curve is not None:
        shown = np.where(curve >= SMALLEST_SHOWN, curve, np.nan)
        ax.plot(np.arange(len(curve)), shown, label=arch, linewidth=1.6)
    ax.set_yscale('log')
    ax.set_xlabel('distance k from the readout (steps)')
    ax.set_title('at initialisation' if when == 'init' else 'after training')
    ax.grid(True, which='major', alpha=0.3)
  axes[0].set_ylabel('gradient norm / its maximum (log scale)')
  axes[1].legend(loc='lower left', fontsize=8, ncol=2)
  fig.suptitle(f'{task}, L={length}: ‖∂ readout / ∂ input at distance k‖')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_lengths(records, task: str, path: pathlib.Path) -> None:
  by_arch = report.sweep_points(records)[task]
  first = next(iter(next(iter(by_arch.values())).values()))[0]
  key = report.headline_metric(first)
  spec = first.get('config', {}).get('task_spec') or {}
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for arch, points in by_arch.items():
    lengths = sorted(points)
    values = [statistics.fmean(r['metrics'][key] for r in points[n]
                               if r['status'] == 'ok' and key in r['metrics'])
              if any(r['status'] == 'ok' for r in points[n]) else np.nan for n in lengths]
    ax.plot(lengths, values, marker='o', label=arch, linewidth=1.6)
  baseline = first['metrics'].get(f'baseline/{key}')
  if baseline is not None:
    ax.axhline(baseline, color='grey', linestyle=':', label='baseline')
  if 'solved' in spec:
    ax.axhline(spec['solved'], color='black', linestyle='--', linewidth=1, label='solved')
  ax.set_xscale('log', base=2)
  swept = sorted({n for points in by_arch.values() for n in points})
  ax.set_xticks(swept, [str(n) for n in swept])
  ax.minorticks_off()
  if not spec.get('higher_is_better', True):
    ax.set_yscale('log')  # errors span decades between the baseline and solved
  label = report.METRIC_LABELS.get(key, key)
  arrow = '↑' if spec.get('higher_is_better', True) else '↓'
  ax.set_xlabel('sequence length (positions read)')
  ax.set_ylabel(f'held-out {label} {arrow}')
  ax.set_title(f'{task}: {label} versus length')
  _save(plt, fig, ax, path)


def _save(plt, fig, ax, path: pathlib.Path) -> None:
  """Grid, legend, tight layout, written at the plots' resolution, and closed."""
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _trained_length(record) -> int | None:
  return ((record.get('config') or {}).get('task') or {}).get('length')


def plot_generalisation(records, task: str, path: pathlib.Path) -> None:
  groups = report.generalisation_groups(records)[task]
  name = report.generalisation_metric(groups)
  several = len({trained for _, trained in groups}) > 1
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for (arch, trained), group in groups.items():
    lengths = report.generalisation_lengths({(arch, trained): group})
    points = [(n, [r['metrics'][f'length/{n}/{name}'] for r in group if r['status'] == 'ok'
                   and r['metrics'].get(f'length/{n}/{name}') is not None]) for n in lengths]
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
  key = f'baseline/eval/{name}'
  baseline = next((r['metrics'][key] for g in groups.values() for r in g
                   if r['metrics'].get(key) is not None), None)
  if baseline is not None:
    ax.axhline(baseline, color='grey', linestyle=':', label='baseline')
  evaluated = report.generalisation_lengths(groups)
  if len(evaluated) <= 12:
    ax.set_xticks(evaluated, [str(n) for n in evaluated])
  label = report.METRIC_LABELS.get(f'eval/{name}', name)
  if name.endswith(('accuracy', 'exact_match')):
    ax.set_ylim(-0.02, 1.02)
  arrow = '↓' if name.endswith(report.LOWER_IS_BETTER) else '↑'
  ax.set_xlabel('evaluation length L (every sequence of the set has length L)')
  ax.set_ylabel(f'held-out {label} {arrow}')
  ax.set_title(f'{task}: length generalisation')
  _save(plt, fig, ax, path)
  scaling.shrink_png(path)


def curve_groups(records) -> dict[str, dict[str, dict[str, list[list]]]]:
  """task -> column (the task with its swept parameters) -> row (the architecture) -> the
  training curves of its seeds. Cost-sweep points, trained a few steps to time them, and
  records from before curves were kept (schema < 4) have none."""
  row, col = report.row_column_labels(records)
  out: dict = {}
  for r in records:
    curve = (r.get('curves') or {}).get('train/loss')
    if curve and not scaling.is_cost_point(r):
      out.setdefault(r['task'], {}).setdefault(col(r), {}).setdefault(row(r), []).append(curve)
  return out


def _over_seeds(curves: list[list]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(steps, mean, lowest, highest) over the seeds that have a finite loss at each step
  (a resumed cell's curve starts at its checkpoint; a diverged one ends in None)."""
  by_step: dict[int, list[float]] = {}
  for curve in curves:
    for step, loss in curve:
      if loss is not None and math.isfinite(loss):
        by_step.setdefault(step, []).append(loss)
  steps = sorted(by_step)
  values = [by_step[s] for s in steps]
  return (np.array(steps), np.array([statistics.fmean(v) for v in values]),
          np.array([min(v) for v in values]), np.array([max(v) for v in values]))


def plot_curves(records, task: str, path: pathlib.Path) -> None:
  columns = curve_groups(records)[task]
  archs = list(dict.fromkeys(a for by_arch in columns.values() for a in by_arch))
  plt = _pyplot()
  colours = plt.get_cmap('tab10' if len(archs) <= 10 else 'tab20')
  ncols = min(len(columns), 4)
  nrows = math.ceil(len(columns) / ncols)
  # Constrained layout makes room for the legend outside the panels, however long the
  # architectures' names.
  fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout='constrained',
                           figsize=(4.4 * ncols + 1.8, 3.4 * nrows + 0.6))
  for ax, (column, by_arch) in zip(axes.flat, columns.items()):
    shown = []
    for arch, curves in by_arch.items():
      steps, mean, low, high = _over_seeds(curves)
      if not len(steps):
        continue
      colour = colours(archs.index(arch))
      ax.plot(steps, mean, color=colour, linewidth=1.5, label=arch,
              marker='o' if len(steps) <= 20 else None, markersize=3)
      if len(curves) > 1:
        ax.fill_between(steps, low, high, color=colour, alpha=0.15, linewidth=0)
      shown += [*low, *high]
    if shown and min(shown) > 0 and max(shown) >= 10 * min(shown):
      ax.set_yscale('log')  # losses that span decades (from the start to a solved task)
    if column != task:  # the swept parameters' values
      ax.set_title(column, fontsize=10)
    ax.set_xlabel('step')
    ax.set_ylabel('training loss')
    ax.grid(True, which='major', alpha=0.3)
  for ax in axes.flat[len(columns):]:
    ax.set_visible(False)
  legend = {}  # every architecture once, whichever panels it appears in
  for ax in axes.flat:
    legend.update(zip(*reversed(ax.get_legend_handles_labels())))
  labels = [a for a in archs if a in legend]
  fig.legend([legend[a] for a in labels], labels, loc='outside right center', fontsize=9,
             frameon=False)
  fig.suptitle(f'{task}: training loss (mean over seeds; band: lowest to highest seed)')
  fig.savefig(path, dpi=100)
  plt.close(fig)
  scaling.shrink_png(path)


def write_plots(out_dir: pathlib.Path, records) -> list[pathlib.Path]:
  """Every plot the records support; returns the files written."""
  written = []
  for task, length in report.gradient_probes(records):
    path = out_dir / f'gradient_{task}_L{length}.png'
    plot_gradients(records, task, length, path)
    written.append(path)
  for task in report.sweep_points(records):
    path = out_dir / f'length_{task}.png'
    plot_lengths(records, task, path)
    written.append(path)
  for task in report.generalisation_groups(records):
    path = out_dir / f'length_generalization_{task}.png'
    plot_generalisation(records, task, path)
    written.append(path)
  written += scaling.write_plots(out_dir, records)
  for task in curve_groups(records):
    path = out_dir / f'curves_{task}.png'
    plot_curves(records, task, path)
    written.append(path)
  return written
