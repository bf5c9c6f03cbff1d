"""The same tuning budget for every architecture: what `archbench tune` tries, how it
selects, the tuning.json it writes, and how a suite's cells take a tuning run's selection
(`--tuned DIR`).

A suite's `tuning` section (config.TUNING) declares the trials per (architecture, task),
the sampler and its seed, the seeds each trial trains, the selection rule and the space:
training fields, plus each architecture's own declared options (ArchSpec.search_space)
when `arch_space` is on. Every architecture gets the same number of trials and, for the
training fields, the same points; an option two architectures both declare gets the same
values in both (common/search_space.py).

Selection reads the validation metric (`val/<name>` for the task's headline `eval/<name>`)
and nothing else: the test set is read once, by the re-run of the selected point. A
trial's value is its rule over its cells (its seeds, and any sweep points or variants of
the pair): 'mean', or 'best' (the best seed: the max of an accuracy, the min of a loss, as
papers that report their best run do). A trial with a failed cell, or without the
validation metric, ranks last.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from typing import Any

from absl import logging

from archbench import archs, data
from archbench.benchmarks.core import Cell, TrainConfig, UsageError
from archbench.benchmarks.results import metrics
from archbench.common import files, search_space

FILE = 'tuning.json'
SCHEMA = 1
RULES = ('mean', 'best')
# Training fields a space may search: the optimisation, not the budget (steps, batch size)
# nor how steps are dispatched.
TRAIN_FIELDS = ('lr', 'warmup_steps', 'weight_decay', 'clip_norm')


@dataclasses.dataclass(frozen=True)
class Tuning:
  """A suite's `tuning` section, checked."""
  trials: int
  sampler: str
  seed: int
  seeds: tuple[int, ...]
  rule: str
  arch_space: bool
  space: dict[str, dict[str, Any]]  # training fields (TRAIN_FIELDS)

  def arch_dims(self, arch: str) -> dict[str, dict[str, Any]]:
    """The architecture's own declared dimensions, where arch_space is on."""
    return dict(archs.get(arch).search_space) if self.arch_space else {}

  def points(self, arch: str) -> list[dict[str, dict[str, Any]]]:
    """The trials' settings for `arch`, {'train': {...}, 'arch': {...}} each: the training
    fields' points are the same for every architecture (one joint sequence, in sorted
    order of the fields); each option is drawn on its own (search_space.own_points)."""
    train = search_space.points({k: self.space[k] for k in sorted(self.space)}, self.trials,
                                self.seed, self.sampler)
    own = search_space.own_points(self.arch_dims(arch), self.trials, self.seed, self.sampler)
    return [{'train': t, 'arch': a} for t, a in zip(train, own)]

  def describe(self, arch_names) -> dict[str, Any]:
    """tuning.json's statement of what was searched and how it was selected."""
    return {'trials': self.trials, 'sampler': self.sampler, 'seed': self.seed,
            'seeds': list(self.seeds), 'rule': self.rule,
            'space': {'train': _plain(self.space),
                      'arch': {a: _plain(self.arch_dims(a)) for a in arch_names}}}


def from_config(config) -> Tuning:
  """The suite's `tuning` section, or UsageError (one line) naming the bad value."""
  t = config.get('tuning')
  if t is None:
    raise UsageError(f'suite {config.name} has no tuning section (suite_config makes one)')
  trials, seed = t.get('trials'), t.get('seed')
  if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
    raise UsageError(f'config.tuning.trials must be a whole number >= 1, got {trials!r}')
  if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
    raise UsageError(f'config.tuning.seed must be a whole number >= 0, got {seed!r}')
  if t.get('sampler') not in search_space.SAMPLERS:
    raise UsageError(f'config.tuning.sampler {t.get("sampler")!r} is not known; valid: '
                     f'{", ".join(search_space.SAMPLERS)}')
  if t.get('rule') not in RULES:
    raise UsageError(f'config.tuning.rule {t.get("rule")!r} is not known; valid: '
                     f'{", ".join(RULES)}')
  try:
    seeds = tuple(int(s) for s in t.get('seeds') or ())
  except (TypeError, ValueError):
    seeds = ()
  if not seeds or min(seeds) < 0:
    raise UsageError(f'config.tuning.seeds must name at least one seed >= 0, got '
                     f'{t.get("seeds")!r}')
  space = {}
  for name, dim in (t.get('space') or {}).items():
    if name not in TRAIN_FIELDS:
      raise UsageError(f'config.tuning.space.{name}: not a training field a space may search; '
                       f'valid: {", ".join(TRAIN_FIELDS)} (an architecture declares its own '
                       'options: ArchSpec.search_space)')
    try:
      space[name] = search_space.check(f'config.tuning.space.{name}', dim)
    except ValueError as e:
      raise UsageError(str(e)) from None
  tuning = Tuning(trials, t.sampler, seed, seeds, t.rule, bool(t.get('arch_space', True)), space)
  try:  # a grid that the trials cannot fill is refused before anything runs
    search_space.unit_points(tuning.sampler, len(space), trials, seed)
  except ValueError as e:
    raise UsageError(f'config.tuning: {e}') from None
  return tuning


def refuse_pinned(config, train_fields, arch_fields, where: str) -> None:
  """A global override (--config.train.<f>, --config.arch.<f>) of a field that is tuned
  would silently win over the tuning: refused, in one line."""
  for section, tuned in (('train', train_fields), ('arch', arch_fields)):
    for name, value in (config.get(section) or {}).items():
      if value is not None and name in tuned:
        raise UsageError(f'config.{section}.{name} is set and is also tuned ({where}); drop '
                         'one')


def apply(cell: Cell, settings: dict[str, dict[str, Any]],
          settings_from: dict[str, Any]) -> Cell:
  """`cell` with `settings` ({'train': {...}, 'arch': {...}}) on top of its own: a new cell
  (its identity follows its settings), labelled with where they came from, and with the
  suite's own settings for its architecture (`per_arch`), where it has any, that the
  settings did not replace."""
  train = TrainConfig(**{**dataclasses.asdict(cell.train), **settings.get('train', {})})
  label = dict(settings_from)
  kept = {part: {k: v for k, v in fields.items() if k not in settings.get(part, {})}
          for part, fields in cell.settings_from.get('per_arch', {}).items()}
  if any(kept.values()):
    label['per_arch'] = {part: fields for part, fields in kept.items() if fields}
  return dataclasses.replace(cell, train=train,
                             arch_overrides={**cell.arch_overrides, **settings.get('arch', {})},
                             settings_from=label)


def validation_metric(cell: Cell) -> tuple[str, bool]:
  """(the validation metric a cell's trial is judged by, whether higher is better): the
  task's headline metric, read on the validation set."""
  spec = data.spec_of(cell.task, **cell.task_params)
  return metrics.validation_key(spec.metric), bool(spec.higher_is_better)


def unique(cells) -> list[Cell]:
  """Cells in order, each experiment (digest) once."""
  out: dict[str, Cell] = {}
  for cell in cells:
    out.setdefault(cell.digest, cell)
  return list(out.values())


# ---------------------------------------------------------------------------------------
# Planning: every trial of every pair, as cells.

def plan_trials(tuning: Tuning, base_cells) -> tuple[list[dict[str, Any]], list[Cell]]:
  """(tuning.json's pairs, as planned; the trial cells to run). `base_cells` are the pairs'
  cells on the tuning seeds; every trial of a pair runs all of a pair's cells."""
  pairs: dict[tuple[str, str], list[Cell]] = {}
  for cell in base_cells:
    pairs.setdefault((cell.arch, cell.task), []).append(cell)
  doc_pairs, trial_cells = [], []
  for (arch, task), cells in pairs.items():
    metric, higher = validation_metric(cells[0])
    trials = []
    for index, settings in enumerate(tuning.points(arch)):
      made = [apply(c, settings, {'from': 'trial', 'trial': index}) for c in cells]
      trial_cells += made
      trials.append({'trial': index, 'settings': settings,
                     'cells': [{'cell_id': c.digest, 'seed': c.seed} for c in made]})
    doc_pairs.append({'arch': arch, 'task': task, 'size': cells[0].size,
                      'task_params': cells[0].task_params, 'metric': metric,
                      'higher_is_better': higher, 'trials': trials, 'selected': None})
  return doc_pairs, unique(trial_cells)


def document(tuning: Tuning, suite: str, pairs: list[dict[str, Any]]) -> dict[str, Any]:
  """tuning.json before any trial ran (status 'planned')."""
  arch_names = list(dict.fromkeys(p['arch'] for p in pairs))
  return {'schema': SCHEMA, 'suite': suite, 'status': 'planned',
          **tuning.describe(arch_names), 'pairs': pairs}


# ---------------------------------------------------------------------------------------
# Selecting on validation.

def trial_value(values: list[float], rule: str, higher_is_better: bool) -> float:
  """A trial's value over its cells' validation values by `rule`."""
  if rule == 'mean':
    return sum(values) / len(values)
  return max(values) if higher_is_better else min(values)


def select(doc: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
  """`doc` with each trial's validation values, status and value from the trial records,
  and each pair's selection: the best value by the rule (ties: the earlier trial), failed
  trials last; None, with why, where no trial has a value. Test metrics are never read."""
  by_id = {r.get('cell_id'): r for r in records}
  out = json.loads(json.dumps(doc))
  for pair in out['pairs']:
    metric, higher = pair['metric'], pair['higher_is_better']
    for trial in pair['trials']:
      for cell in trial['cells']:
        record = by_id.get(cell['cell_id'])
        value = (record or {}).get('metrics', {}).get(metric)
        cell['status'] = 'not run' if record is None else record.get('status')
        cell['val'] = value if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value) else None
      bad = [c for c in trial['cells'] if c['status'] != 'ok']
      missing = [c for c in trial['cells'] if c['status'] == 'ok' and c['val'] is None]
      trial['status'] = bad[0]['status'] if bad else f'no {metric}' if missing else 'ok'
      trial['value'] = (trial_value([c['val'] for c in trial['cells']], out['rule'], higher)
                        if trial['status'] == 'ok' else None)
    ranked = sorted((t for t in pair['trials'] if t['value'] is not None),
                    key=lambda t: (-t['value'] if higher else t['value'], t['trial']))
    pair['ranking'] = [t['trial'] for t in ranked] + [
        t['trial'] for t in pair['trials'] if t['value'] is None]
    if ranked:
      best = ranked[0]
      pair['selected'] = {'trial': best['trial'], 'settings': best['settings'],
                          'value': best['value']}
    else:
      pair['selected'] = None
      statuses = sorted({t['status'] for t in pair['trials']})
      pair['why'] = f'no trial has a value: {", ".join(statuses)}'
  out['status'] = 'selected'
  return out


def write(out_dir: pathlib.Path, doc: dict[str, Any]) -> None:
  files.write_atomically(out_dir / FILE, json.dumps(doc, indent=1, default=str))


# ---------------------------------------------------------------------------------------
# A suite's cells with a tuning run's selection (`--tuned DIR`).

def read(tuned: str) -> dict[str, Any]:
  """The tuning run in directory `tuned` (its tuning.json), selected; UsageError if none."""
  path = pathlib.Path(tuned) / FILE
  try:
    doc = json.loads(path.read_text())
  except OSError:
    raise UsageError(f'--tuned {tuned}: no {FILE} there (archbench tune writes one)') from None
  except ValueError as e:
    raise UsageError(f'--tuned {tuned}: {FILE} is not JSON ({e})') from None
  if not isinstance(doc, dict) or doc.get('status') != 'selected':
    raise UsageError(f'--tuned {tuned}: its tuning has not selected yet (status '
                     f'{doc.get("status") if isinstance(doc, dict) else None!r}); finish it '
                     f'with archbench tune --resume {tuned}')
  return doc


def tuned_fields(doc: dict[str, Any]) -> tuple[set[str], set[str]]:
  """(training fields, backbone fields) some pair of the tuning run selected."""
  chosen = [p['selected']['settings'] for p in doc['pairs'] if p.get('selected')]
  return ({k for s in chosen for k in s.get('train', {})},
          {k for s in chosen for k in s.get('arch', {})})


def apply_selection(cells, doc: dict[str, Any], where: str) -> tuple[list[Cell], list[str]]:
  """(the cells with their pair's selected settings, the pairs among them that the tuning
  run did not select for): those keep the suite's settings and say so. Cells that the
  selection makes identical (variants of a tuned option) run once."""
  pairs = {(p['arch'], p['task']): p for p in doc['pairs']}
  out, untuned = [], []
  for cell in cells:
    pair = pairs.get((cell.arch, cell.task))
    if not pair or not pair.get('selected'):
      untuned.append(f'{cell.arch}/{cell.task}')
      out.append(dataclasses.replace(cell, settings_from={
          'from': 'suite', **cell.settings_from, 'not_tuned_in': where}))
      continue
    chosen = pair['selected']
    label = {'from': 'tuned', 'tuning': where, 'trial': chosen['trial'], 'rule': doc['rule'],
             'selected_on': pair['metric'], 'value': chosen['value'],
             'settings': chosen['settings']}
    if pair.get('size') != cell.size or pair.get('task_params') != cell.task_params:
      label['tuned_on'] = {'size': pair.get('size'), 'task_params': pair.get('task_params')}
    out.append(apply(cell, chosen['settings'], label))
  return unique(out), list(dict.fromkeys(untuned))


def apply_tuned(config, cells, tuned: str) -> list[Cell]:
  """`--tuned DIR`: the suite's cells with DIR's selection; the pairs it did not select
  for are named (a warning) and keep the suite's settings."""
  doc = read(tuned)
  refuse_pinned(config, *tuned_fields(doc), f'--tuned {tuned}')
  cells, untuned = apply_selection(cells, doc, tuned)
  if untuned:
    logging.warning('--tuned %s selected nothing for %s: they keep the suite\'s settings',
                    tuned, ', '.join(untuned))
  return cells


def _plain(space: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
  return {name: {k: list(v) if isinstance(v, tuple) else v for k, v in dim.items()}
          for name, dim in space.items()}
