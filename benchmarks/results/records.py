"""Result records: one JSON object per cell in `results.jsonl`, appended and flushed per
cell so that a killed run keeps every finished cell. Pure (no JAX): what a record's `env`
holds is measured by harness/provenance.py."""
from __future__ import annotations

import dataclasses
import datetime
import enum
import importlib.resources
import json
import math
import os
import pathlib
from typing import Any

from archbench.benchmarks.core import Cell, UsageError

# 2: cell_id and config.cell (the cell itself, enough to run it again).
# 3: ran_on (where the cell ran: executor, host, process, devices).
# 4: curves: {'train/loss': [[step, loss], ...]}, the mean training loss of every dispatch
#    (series that change with how a cell ran, unlike the metrics: a resumed cell holds only
#    the dispatches it ran after its checkpoint). Older records have none.
# 5: env.protocol, what the cells measure (core.PROTOCOL), so that runs of different code
#    share a table only where it is the same (results/merge.py); ran_on.reused_from on a
#    record copied from another run (archbench run --reuse).
SCHEMA = 5
RECORD_KEYS = ('schema', 'run_id', 'cell_id', 'suite', 'arch', 'task', 'size', 'seed', 'config',
               'status', 'error', 'metrics', 'perf', 'curves', 'env', 'ran_on')
# A record's status: 'ok', or how the cell failed (its `error` says why).
STATUSES = ('ok', 'diverged', 'oom', 'timeout', 'error')
# The JSON Schema (draft 2020-12) of a record, every version up to SCHEMA, shipped in this
# package so that a record can be checked without archbench's code (docs/results-format.md).
SCHEMA_FILE = 'record.schema.json'


# The mark, in every table, of a cell whose backbone cannot see its whole input (its
# receptive field is shorter than the sequence: the record's config.coverage).
PARTIAL_VIEW_MARK = '†'
PARTIAL_VIEW_NOTE = (f'{PARTIAL_VIEW_MARK} the model cannot see its whole input: its '
                     'receptive field is shorter than the sequence (config.coverage)')


def sees_whole_input(record) -> bool:
  """False where the record says its backbone's receptive field misses part of the input."""
  coverage = (record.get('config') or {}).get('coverage') or {}
  return coverage.get('sees_whole_input', True)


def partial_view_mark(records) -> str:
  """' †' where any of the records cannot see its whole input, else ''."""
  return '' if all(map(sees_whole_input, records)) else f' {PARTIAL_VIEW_MARK}'


def utc_now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


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


def is_cost_point(record) -> bool:
  """A point of a cost-versus-length sweep (the 'cost' probe): timed, not evaluated."""
  return 'cost' in ((record.get('config') or {}).get('probes') or ())


def train_setting(record, name: str, default=None):
  """One training setting of a record: its config.train is a dict in records read back, a
  TrainConfig in the ones run_cell returns."""
  train = (record.get('config') or {}).get('train') or {}
  return train.get(name, default) if isinstance(train, dict) else getattr(train, name, default)


def batch_size_of(record) -> int | None:
  """The training batch size."""
  return train_setting(record, 'batch_size')


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


def dumps(record: dict[str, Any]) -> str:
  """A record as its line of results.jsonl (without the newline)."""
  return json.dumps(to_jsonable(record), allow_nan=False, sort_keys=False)


def append_record(path: pathlib.Path, record: dict[str, Any]) -> None:
  """One line per record, written with one write() and fsync'd before returning."""
  line = dumps(record) + '\n'
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


def json_schema() -> dict[str, Any]:
  """The record's JSON Schema (SCHEMA_FILE), read from the installed package."""
  return json.loads((importlib.resources.files(__package__) / SCHEMA_FILE).read_text('utf-8'))


def load_run(path) -> list[dict[str, Any]]:
  """The records of a run: `path` is its directory (holding results.jsonl) or the file. A
  missing or unreadable run, or one without a record, is a UsageError naming it."""
  path = pathlib.Path(path)
  file = path / 'results.jsonl' if path.is_dir() else path
  if not file.is_file():
    raise UsageError(f'{path}: no such run (neither a results.jsonl nor a directory with one)')
  try:
    records = load_records(file)
  except (OSError, UnicodeDecodeError) as e:
    raise UsageError(f'{file}: cannot read it ({e})') from None
  records = [r for r in records if isinstance(r, dict) and 'arch' in r and 'status' in r]
  if not records:
    raise UsageError(f'{file}: holds no readable archbench record')
  return records


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
