"""PNG plots of the long-range probes, from `results.jsonl` records alone (matplotlib, Agg).

* `gradient_<task>_L<length>.png`: gradient norm against distance, log scale, one line per
  architecture, at initialisation and after training side by side. Each curve is divided
  by its own maximum: absolute norms depend on each model's output scale, the shape of the
  decay is what compares across families.
* `length_<task>.png`: the headline metric against sequence length (log2 axis), one line
  per architecture, with the task's baseline and solved threshold drawn in.
* `scaling_<task>.png`: cost against length, log-log, for runs with a cost sweep
  (scaling.py).
"""
from __future__ import annotations

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
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


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
  return written + scaling.write_plots(out_dir, records)
