"""Image generation (the `images` evaluator, data/pixels.py), from the records with
samples/images: report section `images`.

A table per task of held-out bits per dimension against the counting baselines and the
solved threshold, with the scores of the samples; and a picture, `samples_<task>.png`:
for each architecture, a grid of the images its trained model drew (the first seed that
has them), since a grid of samples says at a glance what a number cannot.
"""
from __future__ import annotations

import pathlib
import re

import numpy as np

from archbench.benchmarks.results import metrics, plots, sections, tables
from archbench.benchmarks.results import records as records_lib

HEADING = 'Image generation: bits per dimension and samples'
IMAGES, LEVELS = 'samples/images', 'samples/levels'
BITS = 'eval/bits_per_dim'
SCORES = ('eval/sample_plausible', 'eval/sample_copied')
# The counting baselines data/pixels.py states: (label, the baseline's name).
BASELINES = (('memoryless (one distribution for every pixel)', None),
             ('per position (a distribution per pixel position)', 'position'))
GRID = 4        # each architecture's samples as a GRID x GRID square
PER_ROW = 4     # architectures side by side in the picture
PANEL_INCHES = 2.1


def _has_samples(record) -> bool:
  return bool((record.get('metrics') or {}).get(IMAGES))


def groups_by_column(records) -> dict[str, dict[str, list[dict]]]:
  """column (the task, with the parameters that vary) -> row (the architecture) -> its
  records: every task with a recorded sample, with the failed cells of its rows too."""
  row, col = tables.row_column_labels(records)
  generating = {r['task'] for r in records if _has_samples(r)}
  out: dict = {}
  for r in records:
    if r['task'] in generating:
      out.setdefault(col(r), {}).setdefault(row(r), []).append(r)
  return out


def _first(group, key):
  return next((r['metrics'][key] for r in group if r['metrics'].get(key) is not None), None)


def _baseline_key(name: str | None, key: str) -> str:
  return metrics.baseline_key(key) if name is None else metrics.named_baseline_key(name, key)


def table(rows: dict[str, list[dict]]) -> str:
  """Rows: the counting baselines, the solved threshold, then the architectures; columns:
  bits/dim and each sample score, the mean [95% t interval] over ok seeds."""
  every = [r for group in rows.values() for r in group]
  spec = next((metrics.task_spec(r) for r in every if metrics.task_spec(r)), {})
  keys = [BITS, *[k for k in SCORES if any(k in r['metrics'] for r in every)]]
  header = ['arch', 'seeds'] + [f'{metrics.label(k) or k} {metrics.arrow(k, spec)}'
                                for k in keys]
  body = []
  for label, name in BASELINES:
    values = [_first(every, _baseline_key(name, k)) for k in keys]
    body.append([f'*{label}*', ''] + ['' if v is None else
                                      metrics.value_format(k).format(v)
                                      for k, v in zip(keys, values)])
  if spec.get('solved') is not None:
    body.append(['*context model (solved at)*', '',
                 metrics.value_format(BITS).format(spec['solved'])] + [''] * (len(keys) - 1))
  for name, group in rows.items():
    seeds = str(sum(r['status'] == 'ok' for r in group))
    body.append([name, seeds] + [tables.cell_text(group, k, mark_solved=(k == BITS),
                                                  interval=True) for k in keys])
  return records_lib.markdown_table(header, body)


def markdown(records) -> list[str]:
  """The summary's image generation part: one table per task; empty for runs whose records
  hold no samples."""
  by_column = groups_by_column(records)
  if not by_column:
    return []
  parts = [f'## {HEADING}',
           'Held-out bits per pixel (lower is better), against models that count: the '
           'memoryless one and one that knows each pixel\'s position; solved at the bits '
           'of a context model (a distribution per position and the pixels to the left and '
           'above). *Plausible samples*: the share of images drawn from the trained model '
           'that lie as near a training image as 95% of held-out images do (0.95 for '
           'images like the data); *copied samples*: identical to a training image. Mean '
           '[95% t interval] over ok seeds; ✓ solved. The pictures show each '
           'architecture\'s samples (samples_<task>.png).']
  for column, rows in by_column.items():
    parts += [f'### Image generation: {column}', table(rows)]
  return parts


def _mosaic(images: list, grid: int = GRID) -> np.ndarray:
  """Up to grid x grid images [H][W] -> one [grid(H + 1) - 1, grid(W + 1) - 1] array, the
  images row by row with a one-pixel gap (NaN: drawn as the background of the axes)."""
  stack = np.asarray(images[:grid * grid], np.float64)
  n, h, w = stack.shape
  out = np.full((grid * (h + 1) - 1, grid * (w + 1) - 1), np.nan)
  for i in range(n):
    r, c = divmod(i, grid)
    out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = stack[i]
  return out


def plot(rows: dict[str, list[dict]], column: str, path: pathlib.Path) -> bool:
  """The picture of one task: a panel per architecture; False (and no file) where no
  record of it has samples."""
  shown = []
  for name, group in rows.items():
    record = next((r for r in group if r['status'] == 'ok' and _has_samples(r)), None)
    if record is not None:
      shown.append((name, record))
  if not shown:
    return False
  plt = plots.pyplot()
  cols = min(PER_ROW, len(shown))
  lines = -(-len(shown) // cols)
  fig, axes = plt.subplots(lines, cols, figsize=(PANEL_INCHES * cols, PANEL_INCHES * lines + 0.5),
                           squeeze=False)
  for ax in axes.ravel():
    ax.axis('off')
  for ax, (name, record) in zip(axes.ravel(), shown):
    m = record['metrics']
    levels = int(m.get(LEVELS) or (np.max(m[IMAGES]) + 1))
    cmap = plt.get_cmap('gray_r').with_extremes(bad='#d8d8e8')  # bad: the gaps (NaN)
    ax.imshow(_mosaic(m[IMAGES]) / max(levels - 1, 1), cmap=cmap, vmin=0.0, vmax=1.0,
              interpolation='nearest')
    bits = m.get(BITS)
    detail = [f'{bits:.3g} bits/dim' if bits is not None else None,
              f'seed {record["seed"]}']
    ax.set_title(f'{name}\n' + ', '.join(d for d in detail if d), fontsize=8)
  fig.suptitle(f'{column}: samples from each trained model', fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=plots.DPI)
  plt.close(fig)
  plots.shrink_png(path)
  return True


def file_name(column: str) -> str:
  """samples_<column>.png, the column's parameters spelled with [A-Za-z0-9_.=-] only."""
  return 'samples_' + re.sub(r'[^A-Za-z0-9_.=-]+', '_', column).strip('_') + '.png'


def write_plots(out_dir: pathlib.Path, records) -> list[pathlib.Path]:
  written = []
  for column, rows in groups_by_column(records).items():
    path = out_dir / file_name(column)
    if plot(rows, column, path):
      written.append(path)
  return written


SECTION = sections.register(sections.Section('images', markdown, write_plots))
