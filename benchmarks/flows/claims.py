"""`archbench claims`: run the claims study (benchmarks/claims/) and judge every claim
(results/claims.py), or list the claims with their experiments and runtimes.

All the claims' cells run as one plan (cells shared by two claims once), through the same
runner, executors and resume as `archbench run`; claims.json, written before the first
cell, names each claim's cells by digest, so a killed study continues with `archbench
claims --resume DIR` (or `archbench run --resume DIR`, then `archbench report DIR`) and is
judged from its records alone.
"""
from __future__ import annotations

import pathlib
import time

from archbench.benchmarks import claims as claims_lib
from archbench.benchmarks import config as config_lib
from archbench.benchmarks.core import UsageError
from archbench.benchmarks.flows import estimate
from archbench.benchmarks.flows import run as run_flow
from archbench.benchmarks.results import claims as judging
from archbench.benchmarks.results import report

NAME = 'claims'
# Runs whose step rates estimate a size's training time: small models on short inputs
# (quick) and long ones (scaling).
RATE_RUNS = ('quick-cpu', 'scaling-cpu', 'lrd-cpu')


def selected(names=None) -> list[claims_lib.Claim]:
  """The claims named (all when None), in the registry's order."""
  if not names:
    return claims_lib.all_claims()
  return [claims_lib.get(n) for n in names]


def run_config(config=None):
  """How the claims' cells run (benchmarks/suites/_claims.py with the user's --config.*
  overrides): refused where an override reaches past CLAIMS_RUN_SECTIONS into what the
  experiments are, since a claim's verdict is about its own experiment."""
  default = config_lib.load(str(config_lib.CLAIMS_RUN_FILE))
  if config is None:
    return default
  for key in default:
    if key not in config_lib.CLAIMS_RUN_SECTIONS and _plain(config[key]) != _plain(default[key]):
      raise UsageError(f'claims --config.{key}: the claims\' experiments are their own; '
                       f'--config sets how they run: {", ".join(config_lib.CLAIMS_RUN_SECTIONS)}')
  return config


def _plain(value):
  return value.to_dict() if hasattr(value, 'to_dict') else value


def plan(size: str, names=None, workers: int | None = None, config=None):
  """(the claims' specs, the plan of their cells), run as `config` says (run_config:
  executor, workers, Ray, Slurm, trackers, execution limits)."""
  if size not in claims_lib.SIZES:
    raise UsageError(f'--size {size!r}: claims sizes are {", ".join(claims_lib.SIZES)}')
  config = run_config(config)
  specs, cells = [], {}
  for claim in selected(names):
    if claim.why_untestable():
      specs.append(claim.spec(size))
      continue
    mine = claim.cells(size)
    specs.append(claim.spec(size, [c.digest for c in mine]))
    for cell in mine:
      cells.setdefault(cell.digest, cell)
  if not cells:
    raise UsageError('no claim chosen can be tested here (archbench claims --list says why)')
  return specs, run_flow.plan_cells(config, f'{NAME}-{size}', list(cells.values()), workers)


def run(size: str, names=None, out: str | None = None, workers: int | None = None,
        config=None):
  """Run the claims at `size` into `out` and judge them: claims.md, .json, .tex, a plot
  per claim and report.html's claims section. `config`: how the cells run (run_config).
  Returns (out, judged, records)."""
  specs, the_plan = plan(size, names, workers, config)
  out_path = run_flow.out_dir(out, the_plan.name)
  if (out_path / 'results.jsonl').exists():
    raise UsageError(f'--out {out_path} already holds a run (results.jsonl); give a new '
                     f'directory, or continue it with archbench claims --resume {out_path}')
  judging.write_spec(out_path, specs)
  started = time.monotonic()
  records = run_flow.execute(the_plan, out_path)
  judged = judging.write(out_path, specs, records, wall_s=time.monotonic() - started)
  report.write_summaries(out_path, plots=True)  # again: report.html shows the verdicts
  return out_path, judged, records


def resume(out: str, workers: int | None = None):
  """Continue the killed claims study in `out`, then judge it."""
  out_path = pathlib.Path(out)
  specs = judging.saved(out_path)
  if specs is None:
    raise UsageError(f'{out_path} holds no claims study (no {judging.FILE_JSON})')
  records = run_flow.execute(run_flow.plan_resume(out, workers), out_path)
  judged = judging.write(out_path, specs, records)
  report.write_summaries(out_path, plots=True)
  return out_path, judged, records


def _rates(results: pathlib.Path) -> dict:
  rates: dict = {}
  for name in RATE_RUNS:
    if (results / name / 'results.jsonl').is_file():
      for arch, points in estimate.measured_rates(results / name).items():
        rates[arch] = sorted(rates.get(arch, []) + points)
  return rates


def runtime(claim: claims_lib.Claim, size: str, rates: dict) -> tuple[float | None, float]:
  """(CPU seconds, one GPU's seconds) of the claim's training at `size`: the CPU's from
  measured step rates (None where an architecture has none), the GPU's from
  flows/estimate.py's stated assumptions; training only (compilation adds a second or
  more per cell on a CPU)."""
  cpu_s, gpu_s = 0.0, 0.0
  for config in claim.configs(size):
    for row in estimate.estimate(config, rates).values():
      cpu_s = None if cpu_s is None or row['cpu_s'] is None else cpu_s + row['cpu_s']
      gpu_s += row['gpu_s']
  return cpu_s, gpu_s


def _minutes(seconds: float | None) -> str:
  return '–' if seconds is None else f'~{seconds / 60:.1f} min'


def listing(results: pathlib.Path, size: str | None = None) -> str:
  """Every claim: its family, wording, cells at each size (or why it is not testable),
  decision rule, and training time estimated from the runs in `results` (CPU: their
  measured step rates; GPU: flows/estimate.py's stated assumptions)."""
  rates = _rates(results)
  sizes = [size] if size else list(claims_lib.SIZES)
  if size is not None and size not in claims_lib.SIZES:
    raise UsageError(f'--size {size!r}: claims sizes are {", ".join(claims_lib.SIZES)}')
  lines = ['| claim | family | as usually stated | ' + ' | '.join(
      f'{s}: cells, training CPU / 1 GPU' for s in sizes) + ' | decision rule |',
           '|---' * (4 + len(sizes)) + '|']
  total = {s: [0, 0.0, 0.0] for s in sizes}
  for claim in claims_lib.all_claims():
    why = claim.why_untestable()
    if why:
      cols = [f'not testable: {why}'] + [''] * (len(sizes) - 1)
    else:
      cols = []
      for s in sizes:
        n = len(claim.cells(s))
        cpu_s, gpu_s = runtime(claim, s, rates)
        total[s][0] += n
        total[s][1] += cpu_s or 0.0
        total[s][2] += gpu_s
        cols.append(f'{n}, {_minutes(cpu_s)} / {_minutes(gpu_s)}')
    lines.append(f'| {claim.name} | {claim.family} | {claim.text} | {" | ".join(cols)} | '
                 f'{claim.threshold} |')
  lines += ['', 'Estimates, training only: CPU from the step rates measured in '
            f'{", ".join(str(results / r) for r in RATE_RUNS)} (one core\'s worth; two '
            f'workers share it), GPU assumed ({estimate.GPU().name}, flows/estimate.py). '
            + '; '.join(f'{s}: {total[s][0]} cells, {_minutes(total[s][1])} CPU, '
                        f'{_minutes(total[s][2])} GPU' for s in sizes)
            + '. Compilation adds about 1-5 s per cell on a CPU.']
  return '\n'.join(lines)
