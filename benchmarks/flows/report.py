"""`archbench report DIR`: a run's summaries, plots and HTML report rebuilt from its records
(and a reproduction's verdicts re-judged). Imports no JAX: it reads records only."""
from __future__ import annotations

import pathlib

from archbench.benchmarks.core import UsageError
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import report, reproduction


def rebuild(out: pathlib.Path) -> tuple[list[dict], bool]:
  """Rewrite everything generated in `out` from out/results.jsonl; returns (the records,
  whether the run is a reproduction)."""
  if not (out / 'results.jsonl').is_file():
    raise UsageError(f'no results.jsonl in {out}')
  found = records_lib.load_records(out / 'results.jsonl')
  if not found:
    raise UsageError(f'{out / "results.jsonl"} holds no readable record')
  spec = reproduction.saved(out)
  if spec is not None:  # a reproduction: its verdicts again, before report.html shows them
    reproduction.write(out, spec, found)
  return report.write_summaries(out, plots=True), spec is not None
