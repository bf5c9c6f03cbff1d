"""Cost versus sequence length: fitted exponents, tables and a log-log plot
(`scaling_<task>.png`), from the records of a cost sweep alone (cells a suite marks with the
'cost' probe, e.g. `scaling`): report section `scaling`.

Each cell of a cost sweep records its training step time, its forward-only time and its
compiled peak memory at one length T and batch size. Past the fixed costs that dominate
short sequences (dispatch and small-kernel overheads, parameters and optimiser state), a
cost grows as a power of T: attention's as T^2, a recurrence's or a convolution's as T.
The exponent is the slope of log(cost) against log(T), fitted by least squares.

Which points are fitted (the floor rule): those whose cost is at least FLOOR_FACTOR (2)
times the smallest cost of their series (one architecture, batch size and cost); with
fewer than MIN_POINTS (3) such points there is no exponent, since the cost never rose
clear of its floor over the lengths swept. The standard error is least squares' own
(residual variance on n - 2 degrees of freedom). An exponent fitted over a finite range is
an effective one: a T^2 term not yet far past a T term reads between 1 and 2, an
associative scan's T log T a little above 1 (its local exponent is 1 + 1/ln T), and what
is left of the floor in the fitted points biases it low (a T + f fitted over T = 1024 to
65536, where f is the work of T = 500, reads 0.91). Exponents are the cost's growth over
the lengths measured, not asymptotic complexities.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
import statistics

import numpy as np
import scipy.stats

from archbench.benchmarks.results import plots, sections
from archbench.benchmarks.results import records as records_lib

FLOOR_FACTOR = 2.0
MIN_POINTS = 3
# (perf key, what it is, its unit in the tables and plot, scale to that unit)
COSTS = (('step_ms', 'step time', 'ms', 1.0),
         ('infer_ms', 'forward time', 'ms', 1.0),
         ('peak_bytes', 'peak memory', 'MiB', 1 / 2**20))


@dataclasses.dataclass(frozen=True)
class Fit:
  """cost ∝ T^exponent over `lengths`, the points past the floor."""
  exponent: float
  stderr: float
  lengths: tuple[int, ...]


def fit_exponent(lengths, costs) -> Fit | None:
  """The exponent of cost against length over the points past the floor (module
  docstring), or None when fewer than MIN_POINTS are. Missing or non-positive costs (a
  failed cell) are left out."""
  points = sorted((int(t), float(c)) for t, c in zip(lengths, costs)
                  if c is not None and math.isfinite(c) and c > 0)
  if not points:
    return None
  floor = min(c for _, c in points)
  used = [(t, c) for t, c in points if c >= FLOOR_FACTOR * floor]
  if len(used) < MIN_POINTS:
    return None
  line = scipy.stats.linregress(np.log([t for t, _ in used]), np.log([c for _, c in used]))
  return Fit(float(line.slope), float(line.stderr), tuple(t for t, _ in used))


# ---------------------------------------------------------------------------------------
# From records to series.

def length_of(record) -> int | None:
  """The length the model reads (the task's spec), else the requested `length`."""
  config = record.get('config') or {}
  length = (config.get('task_spec') or {}).get('length')
  return length if length is not None else (config.get('task') or {}).get('length')


def series(records) -> dict[str, dict[tuple[str, int], dict[int, list[dict]]]]:
  """task -> (architecture, batch size) -> length -> records, for a run's cost sweep
  (empty for runs without one). The architecture carries its size when a run mixes
  sizes."""
  points = [r for r in records if records_lib.is_cost_point(r) and length_of(r) is not None]
  sizes = {r['size'] for r in points}
  out: dict = {}
  for r in points:
    arch = r['arch'] if len(sizes) == 1 else f'{r["arch"]} ({r["size"]})'
    out.setdefault(r['task'], {}).setdefault((arch, records_lib.batch_size_of(r)), {}) \
        .setdefault(length_of(r), []).append(r)
  return out


def cost_at(group: list[dict], key: str) -> float | None:
  """The median of a cost over a point's ok cells (seeds), or None."""
  values = [r['perf'][key] for r in group
            if r['status'] == 'ok' and r.get('perf', {}).get(key) is not None]
  return statistics.median(values) if values else None


def curve(points: dict[int, list[dict]], key: str) -> tuple[list[int], list[float | None]]:
  lengths = sorted(points)
  return lengths, [cost_at(points[t], key) for t in lengths]


def first_out_of_memory(points: dict[int, list[dict]]) -> int | None:
  return min((t for t, group in points.items() if any(r['status'] == 'oom' for r in group)),
             default=None)


# ---------------------------------------------------------------------------------------
# Tables (Markdown) and the plot.

def _fit_text(fit: Fit | None) -> str:
  if fit is None:
    return '—'
  return f'{fit.exponent:.2f} ± {fit.stderr:.2f} (T ≥ {min(fit.lengths)})'


def exponent_table(records, task: str) -> str:
  by_series = series(records)[task]
  header = ['arch', 'batch'] + [f'{label} exponent' for _, label, _, _ in COSTS] + \
      ['lengths', 'out of memory from']
  rows = []
  for (arch, batch), points in by_series.items():
    fitted = [_fit_text(fit_exponent(*curve(points, key))) for key, *_ in COSTS]
    oom = first_out_of_memory(points)
    rows.append([arch, str(batch), *fitted, f'{min(points)}–{max(points)}',
                 '—' if oom is None else f'T={oom}'])
  return records_lib.markdown_table(header, rows)


def _cost_text(value: float) -> str:
  return f'{value:,.0f}' if value >= 100 else f'{value:.3g}'


def cost_table(records, task: str, key: str, scale: float) -> str:
  """One row per architecture and batch size, one column per length: the cost itself
  (oom where the cell ran out of memory, — where it has no value)."""
  by_series = series(records)[task]
  lengths = sorted({t for points in by_series.values() for t in points})
  rows = []
  for (arch, batch), points in by_series.items():
    row = [arch, str(batch)]
    for t in lengths:
      value = cost_at(points[t], key) if t in points else None
      failed = t in points and all(r['status'] == 'oom' for r in points[t])
      text = 'oom' if failed else '—' if value is None else _cost_text(value * scale)
      row.append(text + (records_lib.partial_view_mark(points[t]) if t in points else ''))
    rows.append(row)
  return records_lib.markdown_table(['arch', 'batch'] + [f'T={t}' for t in lengths], rows)


def markdown(records) -> list[str]:
  """The summary's cost-versus-length part; empty for runs without a cost sweep."""
  parts = []
  for task in series(records):
    parts += [
        f'## Cost versus sequence length: {task}',
        'Exponent p of cost ∝ T^p, fitted by least squares on log cost against log T, ± its '
        f'standard error, over the lengths whose cost is at least {FLOOR_FACTOR:g}× the '
        'smallest of its series (shown as T ≥ the first of them); — where fewer than '
        f'{MIN_POINTS} lengths are past that floor. Step time: one training step; forward '
        'time: one forward-only call at the training batch size (both medians over timed '
        'windows); peak memory: the compiled training step\'s (`memory_analysis()`).',
        exponent_table(records, task),
        f'### Training step time (ms): {task}',
        cost_table(records, task, 'step_ms', 1.0),
        f'### Forward-only time (ms): {task}',
        cost_table(records, task, 'infer_ms', 1.0),
        f'### Peak memory (MiB, compiled training step): {task}',
        cost_table(records, task, 'peak_bytes', 1 / 2**20),
    ]
  return parts


def plot(records, task: str, path: pathlib.Path) -> None:
  """Cost against length on log-log axes: one column per cost, one row per batch size,
  one line per architecture, with dotted T and T^2 guides for reading slopes."""
  plt = plots.pyplot()
  by_series = series(records)[task]
  archs = list(dict.fromkeys(arch for arch, _ in by_series))
  batches = sorted({batch for _, batch in by_series})
  lengths = sorted({t for points in by_series.values() for t in points})
  colours = plt.get_cmap('tab10' if len(archs) <= 10 else 'tab20')
  fig, axes = plt.subplots(len(batches), len(COSTS), squeeze=False,
                           figsize=(4.4 * len(COSTS) + 1.6, 3.4 * len(batches) + 0.6))
  for row, batch in enumerate(batches):
    for column, (key, label, unit, scale) in enumerate(COSTS):
      ax = axes[row][column]
      shown = []
      for i, arch in enumerate(archs):
        if (arch, batch) not in by_series:
          continue
        pairs = [(t, c * scale) for t, c in zip(*curve(by_series[arch, batch], key))
                 if c is not None]
        if pairs:
          ax.plot(*zip(*pairs), marker='o', markersize=3, linewidth=1.5,
                  color=colours(i), label=arch)
          shown += pairs
      if shown:
        _slope_guides(ax, shown)
      ax.set_xscale('log', base=2)
      ax.set_xticks(lengths, [str(t) for t in lengths])
      ax.minorticks_off()
      ax.set_yscale('log')
      ax.set_title(f'{label}, batch {batch}', fontsize=10)
      ax.set_xlabel('sequence length T')
      ax.set_ylabel(unit)
      ax.grid(True, which='major', alpha=0.3)
  legend = {}  # every architecture once, whichever panels it appears in
  for ax in axes.flat:
    legend.update(zip(*reversed(ax.get_legend_handles_labels())))
  labels = [arch for arch in archs if arch in legend]
  width = fig.get_figwidth()
  fig.legend([legend[a] for a in labels], labels, loc='center right', fontsize=9,
             frameon=False)
  fig.suptitle(f'{task}: cost versus sequence length (log-log; dotted: ∝T and ∝T²)')
  fig.tight_layout(rect=(0, 0, 1 - 1.4 / width, 1))
  fig.savefig(path, dpi=100)
  plt.close(fig)
  plots.shrink_png(path)


def _slope_guides(ax, points: list[tuple[int, float]]) -> None:
  """Dotted lines ∝ T and ∝ T^2 from the cheapest cost at the shortest length, across the
  lengths shown."""
  lengths = sorted({t for t, _ in points})
  start = min(c for t, c in points if t == lengths[0])
  ts = np.array([lengths[0], lengths[-1]], dtype=float)
  for power in (1, 2):
    ax.plot(ts, start * (ts / ts[0]) ** power, linestyle=':', color='black', alpha=0.5,
            linewidth=1)


def write_plots(out_dir: pathlib.Path, records) -> list[pathlib.Path]:
  written = []
  for task in series(records):
    path = out_dir / f'scaling_{task}.png'
    plot(records, task, path)
    written.append(path)
  return written


SECTION = sections.register(sections.Section('scaling', markdown, write_plots))
