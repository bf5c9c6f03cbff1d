"""How long a suite will take, before running it: its cells' analytic training FLOPs,
divided by the throughput each architecture reached in a measured run (per-cell step
times, e.g. results/scaling-cpu), and, for accelerators, by a stated assumption.

  archbench estimate --suite lrd --rates results/scaling-cpu

Everything printed is an estimate. The CPU figure rests on measured rates, taken at the
nearest measured work per step (batch x length; beyond the largest measured, the largest
one's rate). The GPU figure rests on assumptions stated in GPU below, since no GPU was
measured: FLOPs at an assumed fraction of the bf16 peak, but never faster than a fixed
cost per step plus, for a recurrence, a sequential cost per scanned position.
"""
from __future__ import annotations

import collections
import dataclasses
import math
import pathlib

import numpy as np

from archbench import archs, data
from archbench.benchmarks import config as config_lib
from archbench.benchmarks.core import UsageError
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.harness import runner
from archbench.benchmarks.measure import timing
from archbench.benchmarks.results import records


@dataclasses.dataclass(frozen=True)
class GPU:
  """What one GPU is assumed to do (no GPU was measured; change these to your own)."""
  name: str = 'H100/H200 in bfloat16'
  peak_flops: float = timing.ACCELERATOR_PEAK_FLOPS['H100']['bfloat16']
  mfu: float = 0.05  # small models (100K parameters) reach a few percent at best
  step_floor_s: float = 1e-3  # dispatch + tens of small kernels per training step
  scan_position_s: float = 15e-6  # one sequential scan position, forward + backward, per layer


def measured_rates(path: pathlib.Path) -> dict[str, list[tuple[float, float]]]:
  """arch -> sorted [(tokens per step, achieved training FLOP/s)] from a run's ok cells."""
  rates = collections.defaultdict(list)
  for r in records.load_records(path if path.suffix == '.jsonl' else path / 'results.jsonl'):
    perf = r.get('perf') or {}
    if r.get('status') == 'ok' and perf.get('step_ms') and perf.get('flops_per_step'):
      tokens = perf['tokens_per_s'] * perf['step_ms'] / 1e3
      rates[r['arch']].append((tokens, perf['flops_per_step'] / (perf['step_ms'] / 1e3)))
  return {a: sorted(v) for a, v in rates.items()}


def rate_at(points: list[tuple[float, float]], tokens: float) -> float:
  """Achieved FLOP/s at `tokens` per step: interpolated in log-log between measured
  points, the nearest end's rate outside them."""
  xs, ys = np.log([p[0] for p in points]), np.log([p[1] for p in points])
  return float(np.exp(np.interp(math.log(tokens), xs, ys)))


def estimate(config, rates: dict, gpu: GPU = GPU()) -> dict:
  """Per-architecture cells, training FLOPs and CPU / GPU seconds for a suite config."""
  rows: dict[str, dict] = {}
  for cell in config_lib.cells(config):
    arch = archs.get(cell.arch)
    spec = data.get(cell.task).spec(**cell.task_params)
    backbone = model_lib.resolve_config(arch, cell.size, spec, cell.arch_overrides,
                                        runner.longest_input(cell, spec))
    per_example = model_lib.train_flops(arch, backbone, spec)
    tc = runner.resolved_train(cell.train, per_example)  # a FLOP budget's steps
    step_flops = per_example * tc.batch_size
    tokens = tc.batch_size * spec.tokens_per_example
    row = rows.setdefault(cell.arch, {'cells': 0, 'flops': 0.0, 'cpu_s': None, 'gpu_s': 0.0,
                                      'gpu_cell_max_s': 0.0})
    row['cells'] += 1
    row['flops'] += step_flops * tc.steps
    if cell.arch in rates:
      row['cpu_s'] = (row['cpu_s'] or 0.0) + step_flops * tc.steps / rate_at(
          rates[cell.arch], tokens)
    layers = getattr(backbone, arch.depth_fields[0], 1) if arch.depth_fields else 1
    scan_s = spec.length * layers * gpu.scan_position_s if arch.uses_scan else 0.0
    cell_s = tc.steps * max(step_flops / (gpu.mfu * gpu.peak_flops), gpu.step_floor_s + scan_s)
    row['gpu_s'] += cell_s
    row['gpu_cell_max_s'] = max(row['gpu_cell_max_s'], cell_s)
  return rows


def _hours(seconds: float | None) -> str:
  return '–' if seconds is None else f'{seconds / 3600:,.1f} h'


def to_markdown(rows: dict, suite: str, rates_from: str, gpu: GPU = GPU()) -> str:
  lines = [f'Estimate for suite `{suite}`: training only (evaluation and probes add a few '
           f'percent); CPU rates measured in `{rates_from}`; GPU: {gpu.name} assumed at '
           f'{gpu.mfu:.0%} of {gpu.peak_flops / 1e12:.0f} TFLOP/s, at least '
           f'{gpu.step_floor_s * 1e3:g} ms per step plus {gpu.scan_position_s * 1e6:g} µs '
           'per scanned position and layer.', '',
           '| arch | cells | training PFLOP | CPU (measured rates) | 1 GPU (assumed) |',
           '|---|---|---|---|---|']
  total = {'cells': 0, 'flops': 0.0, 'cpu_s': 0.0, 'gpu_s': 0.0, 'gpu_cell_max_s': 0.0}
  for name, row in rows.items():
    lines.append(f'| {name} | {row["cells"]} | {row["flops"] / 1e15:,.1f} | '
                 f'{_hours(row["cpu_s"])} | {_hours(row["gpu_s"])} |')
    for k in ('cells', 'flops', 'cpu_s', 'gpu_s'):
      total[k] = None if total[k] is None or row[k] is None else total[k] + row[k]
    total['gpu_cell_max_s'] = max(total['gpu_cell_max_s'], row['gpu_cell_max_s'])
  lines.append(f'| **all** | {total["cells"]} | {total["flops"] / 1e15:,.1f} | '
               f'{_hours(total["cpu_s"])} | {_hours(total["gpu_s"])} |')
  longest = total['gpu_cell_max_s']
  lines += ['', f'8 GPUs (`--config.executor=processes --workers 8`, or a Ray cluster with 8 '
            f'GPUs): about {_hours(max(total["gpu_s"] / 8, longest))}: cells are independent, '
            f'and the longest takes about {longest / 60:.0f} min.']
  return '\n'.join(lines)


def text(config, rates: str) -> str:
  """`archbench estimate`: the table for a suite config, with rates from the run at `rates`
  (a run directory or its results.jsonl)."""
  path = pathlib.Path(rates)
  if not (path / 'results.jsonl').is_file() and not path.is_file():
    raise UsageError(f'--rates {path}: no results.jsonl there')
  return to_markdown(estimate(config, measured_rates(path)), config.name, rates)
