"""`archbench report DIR`: a run's summaries, plots and HTML report rebuilt from its records
(and a reproduction's or a claims study's verdicts re-judged); `archbench report DIR1 DIR2 … --out DIR`: one
summary, report and set of plots from several runs (results/merge.py). Imports no JAX: it
reads records only."""
from __future__ import annotations

import json
import pathlib

from archbench.benchmarks.core import UsageError
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import claims, merge, report, reproduction
from archbench.common import files


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
  judged_claims = claims.saved(out)
  if judged_claims is not None:  # a claims study: its verdicts again
    claims.write(out, judged_claims, found)
  return report.write_summaries(out, plots=True), spec is not None


def merged(runs: list[str], out: pathlib.Path) -> tuple[list[dict], list[str]]:
  """One run in `out` made of the records of `runs` (directories or results.jsonl files):
  its results.jsonl, merged.json (the sources and what the merge did), the summaries, the
  plots and report.html. Returns (the records, the merge's notes)."""
  sources = [merge.load(run) for run in runs]
  resolved = out.resolve()
  for source in sources:
    if (source.path if source.path.is_dir() else source.path.parent).resolve() == resolved:
      raise UsageError(f'--out {out} is one of the runs merged; give a new directory')
  if (out / 'results.jsonl').is_file() and not (out / merge.MERGED_FILE).is_file():
    raise UsageError(f'--out {out} holds a run of its own (results.jsonl); give a new '
                     'directory')
  found, notes = merge.merge(sources)
  out.mkdir(parents=True, exist_ok=True)
  files.write_atomically(out / 'results.jsonl',
                         ''.join(records_lib.dumps(r) + '\n' for r in found))
  files.write_atomically(out / merge.MERGED_FILE, json.dumps(
      {'sources': [str(s.path) for s in sources], 'notes': notes}, indent=1))
  return report.write_summaries(out, plots=True), notes
