"""The core plot of every run, `curves_<task>.png`: the training loss against the step (the
records' `curves`), one line per architecture: the mean over seeds, with a light band from
the lowest to the highest seed where there are several; one panel per value of a swept
parameter (e.g. the length), as the summary's columns. Where the records hold a validation
curve (`val/<name>`, the periodic evaluation during training), its panel stands beside the
training loss's, so a model that overfits or has not yet converged shows as such."""
from __future__ import annotations

import math
import pathlib
import statistics

import numpy as np

from archbench.benchmarks.results import metrics, plots, tables
from archbench.benchmarks.results import records as records_lib

CURVE = 'train/loss'
VAL_PREFIX = 'val/'


def val_key(record) -> str | None:
  """The record's validation curve: val/<headline metric name> where it has one, else its
  first val/ curve, else None (records from before validation curves)."""
  keys = [k for k in (record.get('curves') or {}) if k.startswith(VAL_PREFIX)]
  headline = metrics.headline_metric(record)
  wanted = metrics.validation_key(headline) if headline else None
  return wanted if wanted in keys else next(iter(keys), None)


def curve_groups(records, key_of=lambda r: CURVE) -> dict[str, dict[str, dict[str, list]]]:
  """task -> column (the task with its swept parameters) -> row (the architecture) -> the
  curves (by default the training loss; else `key_of(record)`) of its seeds. Cost-sweep
  points, trained a few steps to time them, and records from before curves were kept
  (schema < 4) have none."""
  row, col = tables.row_column_labels(records)
  out: dict = {}
  for r in records:
    key = key_of(r)
    curve = (r.get('curves') or {}).get(key) if key else None
    if curve and not records_lib.is_cost_point(r):
      out.setdefault(r['task'], {}).setdefault(col(r), {}).setdefault(row(r), []).append(curve)
  return out


def over_seeds(curves: list[list]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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


def _draw(ax, by_arch, archs, colours, log_ok: bool = True) -> None:
  """One panel: per architecture the mean over seeds and the band from the lowest to the
  highest seed; a log scale (with `log_ok`: not for a bounded metric) where it spans
  decades."""
  shown = []
  for arch, curves in by_arch.items():
    steps, mean, low, high = over_seeds(curves)
    if not len(steps):
      continue
    colour = colours(archs.index(arch))
    ax.plot(steps, mean, color=colour, linewidth=1.5, label=arch,
            marker='o' if len(steps) <= 20 else None, markersize=3)
    if len(curves) > 1:
      ax.fill_between(steps, low, high, color=colour, alpha=0.15, linewidth=0)
    shown += [*low, *high]
  if log_ok and shown and min(shown) > 0 and max(shown) >= 10 * min(shown):
    ax.set_yscale('log')  # losses that span decades (from the start to a solved task)
  ax.set_xlabel('step')
  ax.grid(True, which='major', alpha=0.3)


def plot_curves(records, task: str, path: pathlib.Path) -> None:
  columns = curve_groups(records)[task]
  val_columns = curve_groups(records, val_key).get(task, {})
  val_name = next((val_key(r) for r in records if r['task'] == task and val_key(r)), None)
  val_label = f'validation {metrics.label(metrics.eval_key(val_name[4:])) or val_name[4:]}' \
      if val_name else None
  # Each column's training loss, then (where recorded) its validation curve beside it.
  panels = [(column, 'training loss', by_arch) for column, by_arch in columns.items()]
  if val_columns:
    panels = [p for column, _, by_arch in panels
              for p in [(column, 'training loss', by_arch)]
              + ([(column, val_label, val_columns[column])] if column in val_columns else [])]
  val_bounded = bool(val_name) and metrics.is_bounded(val_name)
  archs = list(dict.fromkeys(a for _, _, by_arch in panels for a in by_arch))
  plt = plots.pyplot()
  colours = plt.get_cmap('tab10' if len(archs) <= 10 else 'tab20')
  ncols = min(len(panels), 4)
  nrows = math.ceil(len(panels) / ncols)
  # Constrained layout makes room for the legend outside the panels, however long the
  # architectures' names.
  fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout='constrained',
                           figsize=(4.4 * ncols + 1.8, 3.4 * nrows + 0.6))
  for ax, (column, ylabel, by_arch) in zip(axes.flat, panels):
    _draw(ax, by_arch, archs, colours, log_ok=not (ylabel == val_label and val_bounded))
    if column != task:  # the swept parameters' values
      ax.set_title(column, fontsize=10)
    ax.set_ylabel(ylabel)
  for ax in axes.flat[len(panels):]:
    ax.set_visible(False)
  legend = {}  # every architecture once, whichever panels it appears in
  for ax in axes.flat:
    legend.update(zip(*reversed(ax.get_legend_handles_labels())))
  labels = [a for a in archs if a in legend]
  fig.legend([legend[a] for a in labels], labels, loc='outside right center', fontsize=9,
             frameon=False)
  shown = 'training loss' + (f' and {val_label}' if val_columns else '')
  fig.suptitle(f'{task}: {shown} (mean over seeds; band: lowest to highest seed)')
  fig.savefig(path, dpi=100)
  plt.close(fig)
  plots.shrink_png(path)


def write_plots(out_dir: pathlib.Path, records) -> list[pathlib.Path]:
  written = []
  for task in curve_groups(records):
    path = out_dir / f'curves_{task}.png'
    plot_curves(records, task, path)
    written.append(path)
  return written
