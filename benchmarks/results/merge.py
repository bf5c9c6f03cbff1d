"""Several runs as one table: `archbench report DIR1 DIR2 … --out DIR`, and the runs a single
run holds when it reused records of another (`archbench run --reuse DIR`).

Every record names the code that measured it (env.code_version: archbench's source and its
plug-ins) and, since the fair-fights protocol, what its cells measure (env.protocol,
core.PROTOCOL). Runs share a table only where their records are comparable: the same code,
or the same declared protocol; anything else is refused, naming the two runs. A cell (one
cell_id) recorded by several runs counts once, so that a cell measured twice is never read
as two seeds. Where the runs ran on different machines the summary says so: accuracy
compares across machines (up to float rounding), times do not (machines of one kind differ
by up to 2x).
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

from archbench.benchmarks.core import UsageError
from archbench.benchmarks.results import records as records_lib

MERGED_FILE = 'merged.json'  # the merged run's sources: which directories, what each gave


@dataclasses.dataclass
class Source:
  """One run given to the merge: where it is and its records."""
  path: pathlib.Path
  records: list[dict[str, Any]]


def load(path) -> Source:
  """A run directory (holding results.jsonl) or the file itself."""
  path = pathlib.Path(path)
  file = path / 'results.jsonl' if path.is_dir() else path
  if not file.is_file():
    raise UsageError(f'{path}: no such run (neither a results.jsonl nor a directory with one)')
  found = [r for r in records_lib.load_records(file)
           if isinstance(r, dict) and 'arch' in r and 'status' in r]
  if not found:
    raise UsageError(f'{file}: holds no readable archbench record')
  return Source(path, found)


def _env(record) -> dict[str, Any]:
  return record.get('env') or {}


def _cell_index(record) -> int:
  return (record.get('config') or {}).get('cell_index', 0)


def code_of(record) -> tuple[Any, Any]:
  """(code_version, protocol): what measured the record, and what its cells measure (None
  in records older than the protocol)."""
  return _env(record).get('code_version'), _env(record).get('protocol')


def comparable(a, b) -> bool:
  """Whether two records' cells measure the same thing: the same code, or the same declared
  protocol."""
  (code_a, protocol_a), (code_b, protocol_b) = code_of(a), code_of(b)
  return code_a == code_b or (protocol_a is not None and protocol_a == protocol_b)


def machine(record) -> str:
  """The machine a record ran on, as a table shows it: backend, device kind and count, CPU."""
  env = _env(record)
  return (f'{env.get("backend")} ({env.get("device_kind")} ×{env.get("device_count")}), '
          f'{env.get("cpu")}')


def merge(sources: list[Source]) -> tuple[list[dict[str, Any]], list[str]]:
  """The records of `sources` as one run, and what the merge did (one line each): refuses
  runs that are not comparable; a cell recorded more than once is kept once (an ok record
  before a failed one, else the first given)."""
  firsts = []  # one record of each distinct (code, protocol), with its source
  for source in sources:
    for record in source.records:
      if all(code_of(record) != code_of(seen) for seen, _ in firsts):
        firsts.append((record, source))
  for i, (a, source_a) in enumerate(firsts):
    for b, source_b in firsts[i + 1:]:
      if not comparable(a, b):
        (code_a, protocol_a), (code_b, protocol_b) = code_of(a), code_of(b)
        raise UsageError(
            f'{source_a.path} (code {code_a}, protocol {protocol_a}) and {source_b.path} '
            f'(code {code_b}, protocol {protocol_b}) were measured by different code that '
            'does not declare the same protocol: a cell_id may mean different things in '
            'them; re-run one with this code (archbench reproduce DIR) and merge that')
  kept: dict[Any, dict[str, Any]] = {}
  origin: dict[Any, pathlib.Path] = {}
  dropped = []
  for source in sources:
    for record in sorted(source.records, key=_cell_index):
      key = record.get('cell_id') or id(record)
      if key not in kept:
        kept[key], origin[key] = record, source.path
        continue
      if kept[key]['status'] != 'ok' and record['status'] == 'ok':
        dropped.append((kept[key], origin[key]))
        kept[key], origin[key] = record, source.path
      else:
        dropped.append((record, source.path))
  notes = [f'{s.path}: {len(s.records)} records' for s in sources]
  if dropped:
    notes.append(f'{len(dropped)} cell(s) recorded more than once kept once: '
                 + ', '.join(f'{r["arch"]}/{r["task"]}/s{r["seed"]} from {where}'
                             for r, where in dropped[:5]) + (' …' if len(dropped) > 5 else ''))
  machines = {machine(r) for r in kept.values()}
  if len(machines) > 1:
    notes.append('different machines: ' + '; '.join(sorted(machines)))
  # One order for the tables: the runs in the order given, each in its own cell order.
  ordered = list(kept.values())
  for index, record in enumerate(ordered):
    record.setdefault('config', {})['cell_index'] = index
  return ordered, notes


def runs_of(records) -> list[dict[str, Any]]:
  """The runs that records come from, in order of appearance: run_id, suite, cells, machine,
  code version and protocol of each."""
  runs: dict[str, dict[str, Any]] = {}
  for record in records:
    run = runs.setdefault(record.get('run_id'), {
        'run_id': record.get('run_id'), 'suite': record.get('suite'), 'cells': 0,
        'machine': machine(record), 'code_version': code_of(record)[0],
        'protocol': code_of(record)[1], 'utc_time': _env(record).get('utc_time')})
    run['cells'] += 1
  return list(runs.values())


def runs_section(records) -> list[str]:
  """For records from more than one run (merged, or reused): a table of the runs, and where
  they ran on different machines, what may and may not be compared. Nothing for one run."""
  runs = runs_of(records)
  if len(runs) < 2:
    return []
  lines = ['## Runs in this table',
           f'The records come from {len(runs)} runs; a cell recorded by more than one counts '
           'once.']
  if len({r['machine'] for r in runs}) > 1:
    lines.append('⚠ **The runs ran on different machines.** Accuracy and loss compare across '
                 'them (up to float rounding); step times, throughput and time to target '
                 'compare only between runs on one machine: machines of one kind differ by '
                 'up to 2x.')
  rows = ['| run | suite | cells | machine | code | protocol | started |',
          '|---|---|---|---|---|---|---|']
  rows += [f'| `{r["run_id"]}` | {r["suite"]} | {r["cells"]} | {r["machine"]} | '
           f'`{r["code_version"]}` | {r["protocol"] if r["protocol"] is not None else "—"} | '
           f'{r["utc_time"] or "—"} |' for r in runs]
  return lines + ['\n'.join(rows)]
