"""The record's JSON Schema (benchmarks/results/record.schema.json, shipped in the package):
a valid draft 2020-12 schema that agrees with records.py and core.Cell, that every
committed record satisfies (each reference run and the schema-1 fixture), that accepts
the older schemas' records, and that rejects broken ones."""
import copy
import dataclasses
import pathlib

import jsonschema
import pytest
from record_schema import SCHEMA, problems  # tests/record_schema.py

from archbench.benchmarks import core
from archbench.benchmarks.results import records as records_lib

REPO = pathlib.Path(__file__).resolve().parent.parent
COMMITTED = sorted([*REPO.glob('results/**/results.jsonl'),
                    *REPO.glob('tests/fixtures/**/results.jsonl')])


def _quick_record() -> dict:
  """A committed schema-4 record, to break."""
  return copy.deepcopy(records_lib.load_records(REPO / 'results/quick-cpu/results.jsonl')[0])


def test_the_schema_is_valid_and_agrees_with_the_code():
  jsonschema.Draft202012Validator.check_schema(SCHEMA)
  assert SCHEMA['$schema'] == 'https://json-schema.org/draft/2020-12/schema'
  top = SCHEMA['properties']
  # The versions it covers: every one up to records.SCHEMA, so bumping SCHEMA without
  # saying what the new version holds fails here.
  assert top['schema']['enum'] == list(range(1, records_lib.SCHEMA + 1))
  assert tuple(top) == records_lib.RECORD_KEYS
  assert SCHEMA['additionalProperties'] is False
  assert top['status']['enum'] == list(records_lib.STATUSES)
  # config.cell is what `run --from_record` rebuilds, and Cell.from_dict refuses any other
  # field: the schema names exactly Cell's.
  cell = SCHEMA['$defs']['cell']
  assert set(cell['properties']) == {f.name for f in dataclasses.fields(core.Cell)}
  assert cell['properties']['precision']['enum'] == list(core.PRECISIONS)


def test_every_committed_record_is_valid():
  assert len(COMMITTED) >= 9, COMMITTED
  schemas = set()
  for path in COMMITTED:
    records = records_lib.load_records(path)
    assert records, path
    for line, record in enumerate(records, 1):
      assert problems(record) == [], f'{path.relative_to(REPO)}:{line}'
      schemas.add(record['schema'])
  assert {1, records_lib.SCHEMA} <= schemas


def test_older_schemas_need_only_what_they_had():
  """A key is required from the schema that added it: cell_id and config.cell (2), ran_on
  (3), curves (4)."""
  record = _quick_record()
  del record['curves']
  assert problems(record) != []
  record['schema'] = 3
  assert problems(record) == []
  del record['ran_on']
  assert problems(record) != []
  record['schema'] = 2
  assert problems(record) == []
  del record['cell_id'], record['config']['cell']
  assert problems(record) != []
  record['schema'] = 1
  assert problems(record) == []


def _set(path, value):
  def change(record):
    *parents, last = path
    for key in parents:
      record = record[key]
    record[last] = value
  return change


def _delete(*path):
  def change(record):
    *parents, last = path
    for key in parents:
      record = record[key]
    del record[last]
  return change


BROKEN = [  # (what is wrong, how to break a valid record, where the schema says it is)
    ('unknown status', _set(['status'], 'fine'), '$.status'),
    ('ok with an error', _set(['error'], 'boom'), '$.error'),
    ('failed without saying why', _set(['status'], 'error'), '$.error'),
    ('seed a string', _set(['seed'], '0'), '$.seed'),
    ('schema from the future', _set(['schema'], records_lib.SCHEMA + 1), '$.schema'),
    ('cell_id not a digest', _set(['cell_id'], 'not-a-digest'), '$.cell_id'),
    ('unknown top-level key', _set(['surprise'], 1), '$'),
    ('no run_id', _delete('run_id'), '$'),
    ('no cell_id', _delete('cell_id'), '$'),
    ('no config.cell', _delete('config', 'cell'), '$.config'),
    ('unknown cell field', _set(['config', 'cell', 'colour'], 'red'), '$.config.cell'),
    ('unknown task kind', _set(['config', 'task_spec', 'kind'], 'guess'),
     '$.config.task_spec.kind'),
    ('eval metric a string', _set(['metrics', 'eval/mse'], '0.1'), "$.metrics['eval/mse']"),
    ('solved not a bool', _set(['metrics', 'solved'], 1), '$.metrics.solved'),
    ('metric an object', _set(['metrics', 'my/metric'], {'mean': 1.0}),
     "$.metrics['my/metric']"),
    ('params not whole', _set(['perf', 'params'], 1.5), '$.perf.params'),
    ('curve point of three', _set(['curves', 'train/loss'], [[1, 0.5, 0.1]]),
     "$.curves['train/loss'][0]"),
    ('curve step a float', _set(['curves', 'train/loss'], [[0.5, 0.1]]),
     "$.curves['train/loss'][0][0]"),
    ('env without backend', _delete('env', 'backend'), '$.env'),
    ('utc_time not ISO', _set(['env', 'utc_time'], 'yesterday'), '$.env.utc_time'),
]


@pytest.mark.parametrize('change, where', [pytest.param(c, w, id=name) for name, c, w in BROKEN])
def test_a_broken_record_is_rejected(change, where):
  record = _quick_record()
  assert problems(record) == []
  change(record)
  found = problems(record)
  assert found and any(p.startswith(f'{where}: ') for p in found), found
