"""Records as a pandas DataFrame, `archbench.load`: one row per record, for analysis in a
notebook or a script rather than through archbench's own tables.

Columns, in this order:

  run_id suite arch task size seed status error cell_id schema
      the record's identity and outcome (cell_id is None in schema-1 records)
  metrics.<key>      every metric under its own key: metrics.eval/accuracy,
                     metrics.length/200/accuracy, metrics.solved, ...
  perf.<key>         perf.params, perf.step_ms, perf.examples_per_s, ...
  config.<path>      the configuration flattened with dots: config.train.lr,
                     config.task.length, config.task_spec.metric, config.cell.seed, ...
  env.<path>         env.backend, env.cpu, env.packages.jax, env.git_commit, ...
  ran_on.<key>       ran_on.executor, ran_on.host, ...
  curves.<key>       with curves=True only: each curve as its list of [step, value] pairs

A key a record lacks is NaN (None in an object column); lists (config.probes,
env.cpu_features, the lrd/ gradient curves) stay lists. Rows keep the order of the files
and of the records in each file. Like the rest of the results layer it needs no JAX; it
needs pandas, the `analysis` extra, imported when `load` is called.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from archbench.benchmarks.core import UsageError
from archbench.benchmarks.results import records as records_lib

if TYPE_CHECKING:
  import pandas

INSTALL = "pip install 'archbench[analysis]'"
IDENTITY = ('run_id', 'suite', 'arch', 'task', 'size', 'seed', 'status', 'error', 'cell_id',
            'schema')
# The record's sections, in column order; flat ones keep their keys whole (a metric key
# holds '/' and may be nested in no other way), nested ones are flattened with dots.
FLAT = ('metrics', 'perf', 'curves')
SECTIONS = ('metrics', 'perf', 'config', 'env', 'ran_on', 'curves')


def _pandas():
  try:
    import pandas
  except ImportError:
    raise ImportError(f'archbench.load needs pandas: {INSTALL}') from None
  return pandas


def _paths(paths) -> list[str | os.PathLike]:
  """The run directories and files named, a list or tuple of them counting as its items."""
  out = []
  for path in paths:
    if isinstance(path, (str, os.PathLike)):
      out.append(path)
    elif isinstance(path, Iterable):
      out += _paths(path)
    else:
      raise UsageError(f'archbench.load takes run directories or results.jsonl files, got '
                       f'{path!r}')
  return out


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
  """A nested dict's leaves under dotted column names; an empty dict is left out."""
  if isinstance(value, dict):
    for key, item in value.items():
      _flatten(item, f'{prefix}.{key}', out)
  else:
    out[prefix] = value


def row(record: dict[str, Any], curves: bool = False) -> dict[str, Any]:
  """One record as one row: {column: value} (see the module doc for the columns)."""
  out = {key: record.get(key) for key in IDENTITY}
  for section in SECTIONS:
    if section == 'curves' and not curves:
      continue
    values = record.get(section) or {}
    if section in FLAT:
      out.update((f'{section}.{key}', value) for key, value in values.items())
    else:
      _flatten(values, section, out)
  return out


def load(*paths, status: str | Iterable[str] | None = None,
         curves: bool = False) -> pandas.DataFrame:
  """Records of one or more runs as a DataFrame, one row per record.

  paths: run directories (each holding a results.jsonl), results.jsonl files, or lists
    of them, e.g. `archbench.load('results/quick-cpu')` or
    `archbench.load(*pathlib.Path('results').glob('*/results.jsonl'))`.
  status: keep only records of this status ('ok') or of these statuses; None keeps all
    (a failed cell's row says why in `error`).
  curves: also the training curves, as curves.<key> columns of [step, value] lists
    (large; off by default).

  A missing run, or one without a record, is a UsageError naming it; without pandas, an
  ImportError that says how to install it.
  """
  pandas = _pandas()
  paths = _paths(paths)
  if not paths:
    raise UsageError('archbench.load needs at least one run directory or results.jsonl')
  wanted = None
  if status is not None:
    wanted = {status} if isinstance(status, str) else set(status)
    unknown = wanted - set(records_lib.STATUSES)
    if unknown:
      raise UsageError(f'unknown status {", ".join(sorted(map(repr, unknown)))}; valid: '
                       f'{", ".join(records_lib.STATUSES)}')
  rows = [row(record, curves) for path in paths for record in records_lib.load_run(path)
          if wanted is None or record.get('status') in wanted]
  columns = list(IDENTITY)
  seen = set(columns)
  for section in SECTIONS:  # each section's columns together, in the order first seen
    for r in rows:
      for column in r:
        if column not in seen and column.startswith(section + '.'):
          seen.add(column)
          columns.append(column)
  return pandas.DataFrame.from_records(rows, columns=columns)
