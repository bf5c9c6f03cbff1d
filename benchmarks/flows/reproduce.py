"""`archbench reproduce`: run a published result's reproduction and judge it against the
paper (results/reproduction.py), re-run a recorded run and compare it with its records, or
list the reproductions with their runtimes."""
from __future__ import annotations

import json
import pathlib
import time

from archbench.benchmarks import config as config_lib
from archbench.benchmarks import tuning
from archbench.benchmarks.core import UsageError
from archbench.benchmarks.flows import estimate
from archbench.benchmarks.flows import run as run_flow
from archbench.benchmarks.results import compare, report, reproduction
from archbench.benchmarks.results import records as records_lib


def select(spec: dict, archs=None, tasks=None) -> dict:
  """The reproduction's spec narrowed to --archs / --tasks: the rows of those cells, and
  the claims whose every model and task is among them; a note says what was left out."""
  def kept(arch, task):
    return (archs is None or arch == 'baseline' or arch in archs) and (
        tasks is None or task in tasks)

  if archs is None and tasks is None:
    return spec
  rows = [r for r in spec['rows'] if kept(r['arch'], r['task'])]
  claims = [c for c in spec['claims']
            if all(kept(model, c['task']) for model in (c['better'], *c['than']))]
  asked = ' '.join(f'--{name} {",".join(value)}' for name, value in
                   (('archs', archs), ('tasks', tasks)) if value is not None)
  if not rows and not claims:
    raise UsageError(f'{asked} leaves no row or claim of {spec["title"]!r} to judge; its rows '
                     f'name archs {", ".join(sorted({r["arch"] for r in spec["rows"]}))} and '
                     f'tasks {", ".join(sorted({r["task"] for r in spec["rows"]}))}')
  note = (f'Run with {asked}: {len(rows)} of {len(spec["rows"])} rows and {len(claims)} of '
          f'{len(spec["claims"])} claims judged; the others were not run.')
  return {**spec, 'rows': rows, 'claims': claims, 'notes': [*spec['notes'], note]}


def reproduce(name: str, config, out: str | None, *, archs=None, tasks=None,
              seed: int | None = None, workers: int | None = None,
              tuned: str | None = None) -> tuple[pathlib.Path, list[dict]]:
  """Run reproduction `name` (its config, overrides applied) into `out` and judge it:
  reproduction.md, .json and .tex beside the run's records; with `tuned`, each pair's
  settings selected by that tuning run (--tuned). Returns (out, records)."""
  spec = select(reproduction.plain(config.reproduction), archs, tasks)
  cells = config_lib.cells(config, archs, tasks, None, None if seed is None else [seed])
  if tuned is not None:
    cells = tuning.apply_tuned(config, cells, tuned)
  run_flow.check(cells)
  out_path = run_flow.out_dir(out, name)
  if (out_path / 'results.jsonl').exists():
    raise UsageError(f'--out {out_path} already holds a run (results.jsonl); give a new '
                     f'directory, or continue it with archbench run --resume {out_path}')
  # The spec first, so that a killed reproduction, resumed with `archbench run --resume`,
  # is judged by `archbench report DIR`.
  reproduction.write_spec(out_path, spec)
  started = time.monotonic()
  plan = run_flow.Plan(name, cells, workers or 1, config_lib.execution(config))
  records = run_flow.execute(plan, out_path)
  reproduction.write(out_path, spec, records, wall_s=time.monotonic() - started)
  report.write_summaries(out_path, plots=True)  # again: report.html shows the verdicts
  return out_path, records


def rerun(path: str, out: str | None, *, archs=None, tasks=None, seed: int | None = None,
          workers: int | None = None, timing: bool = False):
  """Re-run the recorded cells of the run at `path` (narrowed by the filters) into `out`
  and compare them with their records: comparison.md there. Step times are judged only
  with `timing`: a later run, even on the same machine, varies beyond its own timing
  windows (up to 1.6x measured on a shared 2-core VM). Returns (out, the comparison, the
  cells re-run)."""
  base = [r for r in compare.load(path)
          if (archs is None or r['arch'] in archs) and (tasks is None or r['task'] in tasks)
          and (seed is None or r['seed'] == seed)]
  if not base:
    raise UsageError(f'no record in {path} matches the filters given')
  cells = list({c.digest: c for c in map(records_lib.cell_of, base)}.values())
  run_flow.check(cells)
  suite = f'reproduce-{base[0].get("suite", "run")}'
  out_path = run_flow.out_dir(out, suite)
  new = run_flow.execute(run_flow.Plan(suite, cells, workers or 1), out_path)
  result = compare.compare(base, new, timing=timing)
  compare.write(out_path, result)
  report.write_summaries(out_path, plots=True)  # again: report.html shows the comparison
  return out_path, result, cells


def listing(results: pathlib.Path) -> str:
  """Every reproduction at both sizes: what it reproduces, its cells and its runtime: the
  cpu size's measured by its run in results/<name>/, the full size's estimated from that
  run's step rates; the reproduction's own statement where `results` holds no run."""
  lines = ['| reproduction | size | what | cells | runtime |', '|---|---|---|---|---|']
  for name, (_, size) in config_lib.reproductions().items():
    config = config_lib.load_reproduction(name)
    rep, cells = config.reproduction, config_lib.cells(config)
    runtime = rep.runtime
    measured = results / name / reproduction.FILE_JSON
    if size == 'cpu' and measured.is_file():
      run = json.loads(measured.read_text())
      if run.get('wall_s'):
        runtime = (f'measured: {reproduction.duration(run["wall_s"])} on {run.get("machine")} '
                   f'({results / name}/)')
    rates_dir = results / f'{name}-cpu'
    if size == 'full' and (rates_dir / 'results.jsonl').is_file():
      rows = estimate.estimate(config, estimate.measured_rates(rates_dir))
      cpu_s = sum(r['cpu_s'] or 0.0 for r in rows.values())
      gpu_s = sum(r['gpu_s'] for r in rows.values())
      runtime = (f'estimate, training only: about {cpu_s / 3600:,.0f} h on the 2-core CPU '
                 f'(step rates of {rates_dir}), about {gpu_s / 3600:,.1f} h on one GPU '
                 f'({estimate.GPU().name}, assumed, see flows/estimate.py)')
    lines.append(f'| {name} | {size} | {rep.title} | {len(cells)} | {runtime} |')
  return '\n'.join(lines)
