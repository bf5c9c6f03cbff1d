"""`archbench tune`: the same tuning budget for every architecture of a suite.

Per (architecture, task), the suite's declared trials (benchmarks/tuning.py) run as
ordinary cells through the run flow, so executors, resume, failures-as-status and records
all work as for `archbench run`: their records go to OUT/trials/. The best trial on
validation is selected per pair (OUT/tuning.json: every trial with its settings and
validation values, and the selection), then re-run on the suite's seeds into OUT itself,
exactly as `archbench run --tuned OUT` would run it: its records are the test results.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

from absl import logging

from archbench.benchmarks import config as config_lib
from archbench.benchmarks import tuning
from archbench.benchmarks.core import Cell, UsageError
from archbench.benchmarks.flows import run as run_flow
from archbench.benchmarks.harness import suite
from archbench.common import files

TRIALS_DIR = 'trials'  # the trials' run, under OUT
PLAN_FILE = 'tune.json'  # the re-run's cells before the selection, so that --resume can finish


@dataclasses.dataclass
class TunePlan:
  """The trials to run, then the suite's cells that take the selection (`final.cells`)."""
  doc: dict[str, Any]  # tuning.json as planned
  trials: run_flow.Plan
  final: run_flow.Plan


def plan(config, archs=None, tasks=None, size=None, seed=None, workers=None) -> TunePlan:
  """The trials of the suite's pairs narrowed by the filters, every pair given the same
  number of trials on the tuning seeds (`--seed` sets the re-run's seed, as in run)."""
  spec = tuning.from_config(config)
  base = config_lib.cells(config, archs, tasks, size, list(spec.seeds))
  tuned_arch_fields = {f for c in base for f in spec.arch_dims(c.arch)}
  tuning.refuse_pinned(config, set(spec.space), tuned_arch_fields, 'config.tuning.space, or '
                       'an architecture\'s search_space with config.tuning.arch_space')
  pairs, trial_cells = tuning.plan_trials(spec, base)
  trials = run_flow.plan_cells(config, f'{config.name}-trials', trial_cells, workers)
  final = run_flow.plan_suite(config, archs, tasks, size, seed, workers)
  return TunePlan(tuning.document(spec, config.name, pairs), trials, final)


def plan_resume(out: str, workers: int | None = None) -> TunePlan:
  """The killed tuning run in `out`, as it was planned: finished trials are skipped, and
  the re-run continues where it stopped."""
  path = pathlib.Path(out)
  try:
    doc = json.loads((path / tuning.FILE).read_text())
    final_cells = [Cell.from_dict(c) for c in json.loads((path / PLAN_FILE).read_text())['cells']]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise UsageError(f'{out} holds no readable {tuning.FILE} and {PLAN_FILE} (was it made by '
                     f'archbench tune?): {type(e).__name__}: {e}') from None
  trials = run_flow.plan_resume(str(path / TRIALS_DIR), workers)
  final = dataclasses.replace(trials, name=doc['suite'], cells=final_cells, run_id=None,
                              resume=False)
  if (path / suite.PLAN_FILE).is_file():  # the re-run had begun
    final = run_flow.plan_resume(out, workers)
    final.cells = final_cells
  return TunePlan(doc, trials, final)


def execute(tp: TunePlan, out: pathlib.Path) -> tuple[dict[str, Any], list[dict]]:
  """Run the trials into out/trials, select, write out/tuning.json, re-run the selection
  on the suite's seeds into out. Returns (tuning.json, the re-run's records)."""
  where = str(out)
  if not tp.trials.resume:
    if (out / tuning.FILE).exists():
      raise UsageError(f'--out {out} already holds a tuning run ({tuning.FILE}); give a new '
                       f'directory, or continue it with archbench tune --resume {out}')
    tuning.write(out, tp.doc)
    files.write_atomically(out / PLAN_FILE, json.dumps(
        {'cells': [c.to_dict() for c in tp.final.cells]}, indent=1))
    tp.trials.cells = [dataclasses.replace(c, settings_from={**c.settings_from,
                                                             'tuning': where})
                       for c in tp.trials.cells]
  logging.info('tuning: %d trial cells -> %s', len(tp.trials.cells), out / TRIALS_DIR)
  trial_records = run_flow.execute(tp.trials, out / TRIALS_DIR)
  doc = tuning.select(tp.doc, trial_records)
  tuning.write(out, doc)
  cells, untuned = tuning.apply_selection(tp.final.cells, doc, where)
  if untuned:
    logging.warning('tuning selected nothing for %s (see %s): they re-run with the suite\'s '
                    'settings', ', '.join(untuned), out / tuning.FILE)
  final = dataclasses.replace(tp.final, cells=cells)
  return doc, run_flow.execute(final, out)


def selection_text(doc: dict[str, Any]) -> str:
  """One line per pair: its selected trial, settings and validation value."""
  lines = [f'{doc["trials"]} trials per pair ({doc["sampler"]}, seed {doc["seed"]}, seeds '
           f'{",".join(map(str, doc["seeds"]))}, rule {doc["rule"]}):']
  for pair in doc['pairs']:
    chosen = pair.get('selected')
    if not chosen:
      lines.append(f'  {pair["arch"]}/{pair["task"]}: nothing selected ({pair.get("why")})')
      continue
    settings = ', '.join(f'{k}={v}' for part in ('train', 'arch')
                         for k, v in chosen['settings'].get(part, {}).items())
    lines.append(f'  {pair["arch"]}/{pair["task"]}: trial {chosen["trial"]} ({settings}), '
                 f'{pair["metric"]} {chosen["value"]:.4g}')
  return '\n'.join(lines)

