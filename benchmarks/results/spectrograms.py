"""The speech tasks' example spectrograms (the `spectrograms` evaluator): report section
`spectrograms`.

For each speech task of a run (and each of its parameter sets), one table row and one
plot, `spectrograms_<task>.png`: a few test examples of every class as log-mel
spectrograms (mel band up, time across), decoded from the first ok record that carries
them. Every cell of a task records the same examples (the test set is fixed by the task's
own seeds), so which record does not matter.
"""
from __future__ import annotations

import base64
import json
import math
import pathlib
import zlib

import numpy as np

from archbench.benchmarks.results import plots, sections
from archbench.benchmarks.results import records as records_lib

KEY = 'examples/logmel'  # the evaluator's metric (benchmarks/harness/evaluators/spectrograms)
HEADING = 'Speech: log-mel spectrograms of held-out examples'


LEVELS = 16  # an example's pixels are 4-bit levels, two a byte (data.speech.encode)


def decode(example: dict) -> np.ndarray:
  """An example's float image [mel bands, frames] from its levels over [lo, hi]."""
  packed = np.frombuffer(zlib.decompress(base64.b64decode(example['pixels'])), np.uint8)
  levels = np.stack([packed >> 4, packed & 0x0F], axis=-1).reshape(example['shape'])
  image = levels.astype(np.float32) / (LEVELS - 1)
  return example['lo'] + image * (example['hi'] - example['lo'])


def groups(records) -> list[tuple[str, dict, list[dict], str]]:
  """(task, its parameters, its examples, the plot's file name) per task and parameter set,
  in the order the records come."""
  out, seen = [], {}
  for r in records:
    examples = (r.get('metrics') or {}).get(KEY)
    if r.get('status') != 'ok' or not examples:
      continue
    params = (r.get('config') or {}).get('task') or {}
    key = (r['task'], json.dumps(params, sort_keys=True, default=str))
    if key in seen:
      continue
    count = sum(task == r['task'] for task, _ in seen)
    seen[key] = True
    name = f'spectrograms_{r["task"]}{"" if not count else f"_{count + 1}"}.png'
    out.append((r['task'], params, examples, name))
  return out


def _classes(examples) -> list[str]:
  return list(dict.fromkeys(e['class'] for e in examples))


def markdown(records) -> list[str]:
  """The section's heading, what the pictures show, and a row per plot."""
  found = groups(records)
  if not found:
    return []
  rows = []
  for task, params, examples, name in found:
    classes = _classes(examples)
    per_class = math.ceil(len(examples) / max(len(classes), 1))
    shown = ', '.join(f'{k}={v}' for k, v in params.items()
                      if k in ('features', 'snr_min', 'snr_max', 'shift', 'source'))
    rows.append([task, shown, str(len(classes)), str(per_class), name])
  return [f'## {HEADING}',
          'Test examples of each class, spread over its voices, as the models read them (the '
          'noise and time shift of the held-out set included): log power in mel bands (up) against '
          'time (across), standardised per example; brighter is louder. Raw-waveform cells '
          'show the log-mel of their waveform.',
          records_lib.markdown_table(['task', 'parameters', 'classes', 'examples per class',
                                      'plot'], rows)]


def plot(task: str, examples: list[dict], path: pathlib.Path) -> None:
  """Columns: the classes; rows: their examples."""
  classes = _classes(examples)
  by_class = {c: [e for e in examples if e['class'] == c] for c in classes}
  rows = max(len(v) for v in by_class.values())
  plt = plots.pyplot()
  fig, axes = plt.subplots(rows, len(classes), squeeze=False,
                           figsize=(min(1.25 * len(classes), 16), 1.5 * rows + 0.7))
  for j, c in enumerate(classes):
    for i in range(rows):
      ax = axes[i][j]
      ax.set_xticks([])
      ax.set_yticks([])
      if i < len(by_class[c]):
        ax.imshow(decode(by_class[c][i]), origin='lower', aspect='auto', cmap='magma',
                  interpolation='nearest')
      else:
        ax.axis('off')
      if i == 0:
        ax.set_title(c, fontsize=9)
  axes[-1][0].set_xlabel('time', fontsize=8)
  axes[-1][0].set_ylabel('mel band', fontsize=8)
  fig.suptitle(f'{task}: log-mel spectrograms of held-out examples', fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=plots.DPI)
  plt.close(fig)
  plots.shrink_png(path)


def write_plots(out_dir: pathlib.Path, records) -> list[pathlib.Path]:
  written = []
  for task, _, examples, name in groups(records):
    plot(task, examples, out_dir / name)
    written.append(out_dir / name)
  return written


SECTION = sections.register(sections.Section('spectrograms', markdown, write_plots))
