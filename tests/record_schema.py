"""The record's JSON Schema (benchmarks/results/record.schema.json) as one validator,
compiled once per test process, for the tests that check records against it."""
import jsonschema

from archbench.benchmarks.results import records as records_lib

SCHEMA = records_lib.json_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def problems(record) -> list[str]:
  """Each way `record` breaks the schema, as 'PATH: message' (the message cut short: it can
  quote the whole record); [] when the record is valid."""
  return [f'{e.json_path}: {e.message[:200]}' for e in VALIDATOR.iter_errors(record)]
