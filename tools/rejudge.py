"""Re-judge a committed reproduction run with its reproduction file as it is now (its
rows, tolerances, baselines and departures), or a claims study with its claims as they
are now (benchmarks/claims/: wording, statistic, decision rule), then rebuild the run's
reports, keeping the run's wall time. `archbench report DIR` re-judges with the spec the
run saved; this is for when the spec itself changed (tests/test_reproduction.py and
tests/test_claims.py fail until the committed runs are re-judged). A claim whose cells
changed is refused: its experiment is not the one recorded, so it needs a new run.

  python tools/rejudge.py results/chomsky-cpu [results/lra-listops-cpu ...]
  python tools/rejudge.py results/claims-cpu
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

from archbench.benchmarks import config as config_lib
from archbench.benchmarks import claims as claims_lib
from archbench.benchmarks.results import claims as claims_judging
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results import report, reproduction


def rejudge_claims(run: pathlib.Path) -> str | None:
  """Re-judge the claims study in `run` with the registry's claims; the reason it cannot
  be, or None."""
  saved = claims_judging.saved(run)
  size = saved[0]['size'] if saved else 'cpu'
  known = {c['name'] for c in saved}
  for claim in claims_lib.all_claims():  # a claim added since: only if it needs no cells
    if claim.name not in known and not claim.why_untestable():
      return f'claim {claim.name} was added since the run and needs cells: run it again'
  saved = [next((c for c in saved if c['name'] == claim.name), claim.spec(size))
           for claim in claims_lib.all_claims()]
  specs = []
  for old in saved:
    claim = claims_lib.get(old['name'])
    cells = [] if claim.why_untestable() else [c.digest for c in claim.cells(old['size'])]
    if sorted(cells) != sorted(old['cells']):
      return (f'claim {old["name"]}: its cells changed since the run (its experiment is not '
              'the one recorded): run it again')
    specs.append(claim.spec(old['size'], old['cells']))
  claims_judging.write(run, specs, records_lib.load_records(run / 'results.jsonl'))
  report.write_summaries(run, plots=True)
  return None


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='tools/rejudge.py', description=__doc__.split('\n\n')[0])
  parser.add_argument('runs', nargs='+', type=pathlib.Path,
                      help='reproduction or claims run folders')
  args = parser.parse_args(argv)
  for run in args.runs:
    if (run / claims_judging.FILE_JSON).is_file():
      why = rejudge_claims(run)
      if why:
        print(f'tools/rejudge.py: {run}: {why}', file=sys.stderr)
        return 2
      print(f'{run}: re-judged with benchmarks/claims/ as of now')
      continue
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
