"""Re-judge a committed reproduction run with its reproduction file as it is now (its
rows, tolerances, baselines and departures), then rebuild the run's reports, keeping
the run's wall time. `archbench report DIR` re-judges with the spec the run saved; this is
for when the paper's spec itself changed (tests/test_reproduction.py fails until the
committed runs are re-judged).

  python tools/rejudge.py results/chomsky-cpu [results/lra-listops-cpu ...]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

from archbench.benchmarks import config as config_lib
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import report, reproduction


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='tools/rejudge.py', description=__doc__.split('\n\n')[0])
  parser.add_argument('runs', nargs='+', type=pathlib.Path, help='reproduction run folders')
  args = parser.parse_args(argv)
  for run in args.runs:
    saved = run / reproduction.FILE_JSON
    if not saved.is_file():
      print(f'tools/rejudge.py: {run} holds no {reproduction.FILE_JSON}: not a reproduction '
            'run', file=sys.stderr)
      return 2
    suite = json.loads((run / 'run.json').read_text())['suite']
    spec = config_lib.load_reproduction(suite).reproduction
    reproduction.write(run, reproduction.plain(spec),
                       records_lib.load_records(run / 'results.jsonl'))
    report.write_summaries(run, plots=True)  # report.html shows the new verdicts
    print(f'{run}: re-judged with benchmarks/reproductions/ as of now ({suite})')
  return 0


if __name__ == '__main__':
  sys.exit(main())
