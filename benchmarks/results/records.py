"""Result records: one JSON object per cell in `results.jsonl`, appended and flushed per
cell so that a killed run keeps every finished cell."""
from __future__ import annotations

import dataclasses
import datetime
import enum
import hashlib
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
# 3: ran_on (where the cell ran: executor, host, process, devices).
# 4: curves: {'train/loss': [[step, loss], ...]}, the mean training loss of every dispatch
#    (series that change with how a cell ran, unlike the metrics: a resumed cell holds only
#    the dispatches it ran after its checkpoint). Older records have none.
SCHEMA = 4
RECORD_KEYS = ('schema', 'run_id', 'cell_id', 'suite', 'arch', 'task', 'size', 'seed', 'config',
               'status', 'error', 'metrics', 'perf', 'curves', 'env', 'ran_on')
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


# CPU features that decide which kernels XLA's CPU backend emits, and so both its speed
# and its float results (a fused multiply-add rounds once, AVX-512 sums in other orders).
_CPU_FEATURES = ('sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_fp16',
                 'avx_vnni', 'amx_tile', 'amx_bf16', 'asimd', 'sve')


def _cpu_features() -> list[str]:
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith(('flags', 'Features')):
        present = set(line.split(':', 1)[1].split())
        return [f for f in _CPU_FEATURES if f in present]
  except OSError:
    pass
  return []


def packages_digest() -> str:
  """A digest of every installed distribution and its version: two environments with the
  same digest have the same packages."""
  names = sorted({f'{d.metadata["Name"]}=={d.version}'.lower()
                  for d in importlib.metadata.distributions() if d.metadata['Name']})
  return hashlib.sha256('\n'.join(names).encode()).hexdigest()[:16]


def code_version() -> str:
  """A digest of archbench's own source (and of any loaded plug-in file): what a resumed run
  must share with the run it continues, whether or not it runs from a git checkout."""
  from archbench import archs, data  # noqa: PLC0415  (their folders, wherever installed)
  from archbench import benchmarks
  from archbench.benchmarks import plugins
  digest = hashlib.sha256()
  for package in (archs, data, benchmarks):
    root = pathlib.Path(package.__file__).parent
    for path in sorted(root.rglob('*.py')):
      digest.update(str(path.relative_to(root)).encode())
      digest.update(path.read_bytes())
  for source in plugins.loaded():
    path = pathlib.Path(source)
    digest.update(path.read_bytes() if path.is_file() else source.encode())
  return digest.hexdigest()[:16]


def environment(argv: list[str] | None = None) -> dict[str, Any]:
  """What the numbers depend on beyond the cell itself: the machine (CPU model and the
  features XLA targets, device kind and count), XLA's settings (flags, matmul precision),
  the software (Python, versions, a digest of every installed package) and the code
  (archbench's source digest, the git commit and whether it had local changes)."""
  device = jax.devices()[0]
  return {
      'python': platform.python_version(),
      'packages': {name: _package_version(name) for name in PACKAGES},
      'packages_digest': packages_digest(),
      **{name: _package_version(name) for name in ('jax', 'jaxlib', 'flax', 'optax')},
      'backend': jax.default_backend(),
      'device_kind': device.device_kind,
      'device_count': jax.device_count(),  # every host's, on a multi-host run
      'process_count': jax.process_count(),
      'cpu': _cpu_model(),
      'cpu_features': _cpu_features(),
      'cpu_count': os.cpu_count(),
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
      'matmul_precision': str(jax.config.jax_default_matmul_precision or 'default'),
      # With a persistent cache, a cell's compile_s may be a load from disk.
      'compile_cache': (jax.config.jax_compilation_cache_dir
                        if jax.config.jax_enable_compilation_cache else None),
      'platform': platform.platform(),
      'code_version': code_version(),
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


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
  """A Markdown table, for the summaries and reports written from records (a `|` in a cell
  as `\\|`, so that the LaTeX and HTML reports read the same cells back: markup.py)."""
  line = lambda cells: '| ' + ' | '.join(str(c).replace('|', '\\|') for c in cells) + ' |'
  return '\n'.join([line(header), '|' + '---|' * len(header), *map(line, rows)])


def env_text(value) -> str:
  """An `env` value on one line: {name: version} as 'name version, ...', lists spaced."""
  if isinstance(value, dict):
    return ', '.join(f'{k} {v}' for k, v in value.items())
  if isinstance(value, list):
    return ' '.join(map(str, value)) or '(none)'
  return str(value)


def append_record(path: pathlib.Path, record: dict[str, Any]) -> None:
  """One line per record, written with one write() and fsync'd before returning."""
  line = json.dumps(to_jsonable(record), allow_nan=False, sort_keys=False) + '\n'
  with open(path, 'a', encoding='utf-8') as f:
    f.write(line)
    f.flush()
    os.fsync(f.fileno())


def repair(path: pathlib.Path) -> int:
  """Cut a torn last line (a run killed mid-write) off `path`, so that appending the next
  record cannot glue onto it; returns the bytes removed. The cut is a truncation at the last
  complete line, which a second kill cannot make worse."""
  if not path.is_file():
    return 0
  content = path.read_bytes()
  keep = len(content)
  tail = content[content.rfind(b'\n') + 1:]
  if tail:  # no newline at the end: the last line is torn
    keep -= len(tail)
  else:
    last = content[content.rfind(b'\n', 0, len(content) - 1) + 1:]
    try:
      json.loads(last)
    except ValueError:
      keep -= len(last)
  if keep < len(content):
    with open(path, 'r+b') as f:
      f.truncate(keep)
      os.fsync(f.fileno())
  return len(content) - keep


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
