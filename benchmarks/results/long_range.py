"""The long-range dependency study (the gradient and length-sweep evaluators in
benchmarks/harness/evaluators/), from the records with lrd/ metrics: report section `lrd`.

Tables: the longest swept length at which each architecture solves each task, the headline
metric at every swept length, and the gradient-versus-distance figures. Plots:

* `gradient_<task>_L<length>.png`: gradient norm against distance, log scale, one line per
  architecture, at initialisation and after training side by side. Each curve is divided
  by its own maximum: absolute norms depend on each model's output scale, the shape of the
  decay is what compares across families.
* `length_<task>.png`: the headline metric against sequence length (log2 axis), one line
  per architecture, with the task's baseline and solved threshold drawn in.
"""
from __future__ import annotations

import math
import pathlib
import statistics

import numpy as np

from archbench.benchmarks.results import metrics, plots, sections, tables
from archbench.benchmarks.results import records as records_lib

LENGTH = metrics.lrd_key('length')  # the swept length a record is a point of
GRADIENT_FIGURES = [('rate', 'decay rate /step', '{:.3f}'), ('horizon', 'horizon', '{:.0f}'),
                    ('far_near', 'far/near', '{:.2g}')]
SMALLEST_SHOWN = 1e-12  # relative norms below this (TCN's exact zeros) leave the plot


def _gradient_key(when: str) -> str:
  return metrics.lrd_key(f'grad_{when}')  # when: 'init' or 'trained'


# ---------------------------------------------------------------------------------------
# Accuracy versus length.

def sweep_points(records) -> dict[str, dict[str, dict[int, list[dict]]]]:
  """task -> row -> length -> records, for the points of accuracy-versus-length sweeps."""
  row, _ = tables.row_column_labels(records)
  out: dict = {}
  for r in records:
    length = r['metrics'].get(LENGTH)
    if length is not None:
      out.setdefault(r['task'], {}).setdefault(row(r), {}).setdefault(length, []).append(r)
  return out


def _solved_at(group: list[dict]) -> bool:
  """A sweep point is solved when the mean over its ok seeds meets the task's threshold
  (a failed cell counts as unsolved)."""
  ok = [r for r in group if r['status'] == 'ok']
  key = metrics.headline_metric(group[0])
  spec = metrics.task_spec(group[0])
  if not ok or len(ok) < len(group) or key is None or 'solved' not in spec:
    return False
  mean = statistics.fmean(r['metrics'][key] for r in ok)
  return mean >= spec['solved'] if metrics.higher_is_better(key, spec) else mean <= spec['solved']


def longest_solved(records) -> dict[tuple[str, str], int | None]:
  """(row, task) -> the longest swept length at which the task is solved, or None."""
  return {(a, task): max((n for n, g in points.items() if _solved_at(g)), default=None)
          for task, by_arch in sweep_points(records).items() for a, points in by_arch.items()}


def longest_solved_table(records) -> str:
  sweeps = sweep_points(records)
  best = longest_solved(records)
  tasks = list(sweeps)
  rows = tables.ordered(a for t in tasks for a in sweeps[t])

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
  key = metrics.headline_metric(next(iter(next(iter(by_arch.values())).values()))[0])
  header = ['arch'] + [f'L={n}' for n in lengths]
  body = [[a] + [tables.cell_text(points[n], key, True, interval=True) if n in points else ''
                 for n in lengths]
          for a, points in by_arch.items()]
  return records_lib.markdown_table(header, body)


# ---------------------------------------------------------------------------------------
# Gradient versus distance.

def gradient_groups(records, task: str, length: int) -> dict[str, list[dict]]:
  """row -> the records of `task` at `length` that hold gradient curves (one per seed)."""
  row, _ = tables.row_column_labels(records)
  groups: dict[str, list] = {}
  for r in records:
    if (r['task'], r['metrics'].get(LENGTH)) == (task, length) and \
        r['metrics'].get(_gradient_key('init')):
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
        key = metrics.lrd_key(f'{name}_{when}')
        values = [r['metrics'][key] for r in group if r['metrics'].get(key) is not None]
        values = [v for v in values if not math.isnan(v)]
        cells.append(fmt.format(statistics.fmean(values)) if values else '—')
    body.append([a] + cells)
  return records_lib.markdown_table(header, body)


def gradient_probes(records) -> list[tuple[str, int]]:
  """(task, length) pairs that have gradient curves, in order of appearance."""
  return tables.ordered((r['task'], r['metrics'][LENGTH]) for r in records
                        if r['metrics'].get(_gradient_key('init')))


def markdown(records) -> list[str]:
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
# Plots.

def _mean_curve(group: list[dict], key: str) -> np.ndarray | None:
  curves = [np.asarray(r['metrics'][key]) for r in group if r['metrics'].get(key)]
  if not curves:
    return None
  curve = np.mean(curves, axis=0)
  return curve / curve.max() if curve.max() > 0 else None


def plot_gradients(records, task: str, length: int, path: pathlib.Path) -> None:
  groups = gradient_groups(records, task, length)
  plt = plots.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
  for ax, when in zip(axes, ('init', 'trained')):
    for arch, group in groups.items():
      curve = _mean_curve(group, _gradient_key(when))
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
  fig.savefig(path, dpi=plots.DPI)
  plt.close(fig)


def plot_lengths(records, task: str, path: pathlib.Path) -> None:
  by_arch = sweep_points(records)[task]
  first = next(iter(next(iter(by_arch.values())).values()))[0]
  key = metrics.headline_metric(first)
  spec = metrics.task_spec(first)
  higher = metrics.higher_is_better(key, spec)
  plt = plots.pyplot()
  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for arch, points in by_arch.items():
    lengths = sorted(points)
    values = [statistics.fmean(r['metrics'][key] for r in points[n]
                               if r['status'] == 'ok' and key in r['metrics'])
              if any(r['status'] == 'ok' for r in points[n]) else np.nan for n in lengths]
    ax.plot(lengths, values, marker='o', label=arch, linewidth=1.6)
  baseline = first['metrics'].get(metrics.baseline_key(key))
  if baseline is not None:
    ax.axhline(baseline, color='grey', linestyle=':', label='baseline')
  if 'solved' in spec:
    ax.axhline(spec['solved'], color='black', linestyle='--', linewidth=1, label='solved')
  ax.set_xscale('log', base=2)
  swept = sorted({n for points in by_arch.values() for n in points})
  ax.set_xticks(swept, [str(n) for n in swept])
  ax.minorticks_off()
  if not higher:
    ax.set_yscale('log')  # errors span decades between the baseline and solved
  label = metrics.label(key) or key
  ax.set_xlabel('sequence length (positions read)')
  ax.set_ylabel(f'held-out {label} {metrics.arrow(key, spec)}')
  ax.set_title(f'{task}: {label} versus length')
  plots.save(plt, fig, ax, path)


def write_plots(out_dir: pathlib.Path, records) -> list[pathlib.Path]:
  written = []
  for task, length in gradient_probes(records):
    path = out_dir / f'gradient_{task}_L{length}.png'
    plot_gradients(records, task, length, path)
    written.append(path)
  for task in sweep_points(records):
    path = out_dir / f'length_{task}.png'
    plot_lengths(records, task, path)
    written.append(path)
  return written


SECTION = sections.register(sections.Section('lrd', markdown, write_plots))
