"""Result records: one JSON object per cell in `results.jsonl`, appended and flushed per
cell so that a killed run keeps every finished cell."""
from __future__ import annotations

import dataclasses
import datetime
import enum
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
from typing import Any

import jax

from archbench.benchmarks.core import STATUSES, Cell, UsageError  # noqa: F401

# 2: cell_id and config.cell (the cell itself, enough to run it again).
SCHEMA = 2
RECORD_KEYS = ('schema', 'run_id', 'cell_id', 'suite', 'arch', 'task', 'size', 'seed', 'config',
               'status', 'error', 'metrics', 'perf', 'env')
PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'numpy', 'orbax-checkpoint',
            'tensorflow-datasets', 'scikit-learn')
# The source checkout, when archbench runs from one (an editable install); a regular
# install lives in site-packages and has no commit of its own.
_SOURCE_ROOT = pathlib.Path(__file__).resolve().parents[2]


def utc_now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _package_version(name: str) -> str | None:
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None


def _cpu_model() -> str:
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def git_commit() -> str | None:
  """HEAD of the checkout archbench runs from, '+dirty' when it has local changes; None
  for an installed copy (whatever repository site-packages happens to sit in)."""
  try:
    run = lambda *a: subprocess.run(['git', *a], cwd=_SOURCE_ROOT, capture_output=True,
                                    text=True, timeout=5, check=True).stdout.strip()
    if pathlib.Path(run('rev-parse', '--show-toplevel')).resolve() != _SOURCE_ROOT:
      return None
    commit = run('rev-parse', 'HEAD')
    return commit + ('+dirty' if run('status', '--porcelain', '--untracked-files=no') else '')
  except (OSError, subprocess.SubprocessError):
    return None


def environment(argv: list[str] | None = None) -> dict[str, Any]:
  device = jax.devices()[0]
  return {
      'python': platform.python_version(),
      'packages': {name: _package_version(name) for name in PACKAGES},
      **{name: _package_version(name) for name in ('jax', 'jaxlib', 'flax', 'optax')},
      'backend': jax.default_backend(),
      'device_kind': device.device_kind,
      'device_count': jax.device_count(),
      'cpu': _cpu_model(),
      'cpu_count': os.cpu_count(),
      'platform': platform.platform(),
      'git_commit': git_commit(),
      'command': ' '.join(sys.argv if argv is None else argv),
      'utc_time': utc_now(),
  }


def to_jsonable(value):
  """Configs (dataclasses, enums, tuples) to JSON; non-finite floats to None (JSON has no
  NaN), so every line parses with any JSON reader."""
  if dataclasses.is_dataclass(value) and not isinstance(value, type):
    return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
  if isinstance(value, enum.Enum):
    return value.value
  if isinstance(value, dict):
    return {str(k): to_jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_jsonable(v) for v in value]
  if hasattr(value, 'item') and getattr(value, 'ndim', 1) == 0:  # numpy / jax scalars
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def cell_of(record: dict[str, Any]) -> Cell:
  """The cell a record measured, to run it again. Schema 1 records (before config.cell)
  are rebuilt from their requested config."""
  config = record.get('config') or {}
  if 'cell' in config:
    return Cell.from_dict(config['cell'])
  try:
    return Cell.from_dict({
        'arch': record['arch'], 'task': record['task'], 'size': record['size'],
        'seed': record['seed'], 'task_params': config.get('task') or {},
        'arch_overrides': config.get('arch_overrides') or {},
        'train': config.get('train') or {}, 'fast_compile': config.get('fast_compile', False),
        'probes': config.get('probes') or ()})
  except KeyError as e:
    raise UsageError(f'the record has no {e.args[0]!r}: not an archbench record') from None


def append_record(path: pathlib.Path, record: dict[str, Any]) -> None:
  """One line per record, written with one write() and fsync'd before returning."""
  line = json.dumps(to_jsonable(record), allow_nan=False, sort_keys=False) + '\n'
  with open(path, 'a', encoding='utf-8') as f:
    f.write(line)
    f.flush()
    os.fsync(f.fileno())


def load_records(path: pathlib.Path) -> list[dict[str, Any]]:
  """All complete records; a torn last line (a run killed mid-write) is skipped."""
  records = []
  with open(path, encoding='utf-8') as f:
    for line in f:
      line = line.strip()
      if not line:
        continue
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return records
