"""Suites as configuration: one `ml_collections` ConfigDict per suite, resolved into cells.

A suite file (`benchmarks/suites/<name>.py`, or any file a user passes as `--config`)
defines `get_config()` returning `suite_config(...)`. Every field can be overridden from the
command line with `--config.<path>=<value>` (ml_collections' `config_flags`). The layout:

  name, doc, size, seeds, archs, depth, fast_compile   the suite as a whole
  precision                        'float32' or 'bfloat16' (mixed): part of every cell
  executor, workers                where cells run: 'local' (this process, one at a time),
                                   'processes' (a pool of `workers`, one device each),
                                   'ray' (a Ray cluster) or 'slurm' (a Slurm job per cell);
                                   workers > 1 with 'local' means 'processes'
  ray.{address, num_cpus_per_cell, num_gpus_per_cell}   the Ray cluster to join (None:
                                   start a local one) and what each cell's task requests
  slurm.{partition, time, cpus_per_cell, gpus_per_cell, mem_gb, extra, folder, local}
                                   what each cell's Slurm job asks for (time: minutes,
                                   default 60; extra: other sbatch options as a dict,
                                   --config.slurm.extra="{'qos': 'high'}"), where submitit
                                   keeps its files (None: OUT/slurm) and local=True: the
                                   jobs run on this machine, `workers` at once
                                   (harness/slurm.py)
  execution.{time_limit_s, checkpoint_every_s, checkpoint_every_steps, checkpoint_min_s,
             devices}              how cells run (core.Execution; not part of a cell's
                                   identity); devices: data parallelism within a cell
  log.{tensorboard, wandb, wandb_project, wandb_entity, wandb_mode, wandb_dir}
                                   experiment trackers, written by the driver from each
                                   finished cell's record (results/trackers.py):
                                   tensorboard: event files under OUT/tensorboard/ (needs
                                   tensorboardX); wandb: one W&B run per cell and one for
                                   the suite run (needs wandb), in project wandb_project
                                   ('archbench') of wandb_entity (None: W&B's default), in
                                   mode wandb_mode ('offline' or 'online'; None: WANDB_MODE
                                   if exported, else offline), under wandb_dir/wandb/
                                   (None: OUT)
  tensorboard                      the older spelling of log.tensorboard (either one)
  evaluators                       evaluators to run on every cell, by name
                                   (harness/evaluators; a plug-in's too), on top of those
                                   the cells' studies run: --config.evaluators=a,b
  tasks.<task>.params.<p>          generator parameters (complete: the task's defaults filled in)
  tasks.<task>.train.<f>           training settings of that task (complete TrainConfig)
  tasks.<task>.archs               which architectures run it (None: every one that can)
  tasks.<task>.arch_train.<a>.<f>  training settings for one architecture on that task
  tasks.<task>.arch_config.<a>.<f> backbone settings for one architecture on that task
  tasks.<task>.arch_variants.<a>.<f>  one cell per value of these backbone settings for
                                   one architecture (e.g. its positional encodings)
  tasks.<task>.sweep.{param, points, gradient_probe_at, probe}   one cell per value: an
                                   accuracy-versus-length sweep (probe 'length', lrd) or a
                                   cost-versus-length one (probe 'cost', scaling)
  tasks.<task>.batch_sizes         one cell per training batch size, as the task's
                                   train.batch_size (None: that setting alone)
  tasks.<task>.seeds, tasks.<task>.arch_seeds.<a>   seeds for that task, or that pair, in
                                   place of the suite's (more seeds where results vary)
  tasks.<task>.eval_lengths        length generalisation: after training, evaluate at each
                                   of these lengths too (records: length/<L>/<metric> and
                                   ood/<metric>, the mean beyond the training length)
  tasks.<task>.evaluators          evaluators to run on that task's cells, by name
  train.<f>, task.<p>, arch.<f>    global overrides: unset (None) in suites; set on the
                                   command line they apply to every cell of the run
  tuning.{trials, sampler, seed, seeds, rule, arch_space}, tuning.space.<f>.{scale, low,
             high, choices}        what `archbench tune` searches, and how it selects
                                   (benchmarks/tuning.py): the same trials for every
                                   architecture; space: training fields (TrainConfig);
                                   arch_space: also each architecture's declared options

Precedence, lowest first: the TrainConfig/task/budget defaults, the suite's task settings
(a batch size of `batch_sizes` among them), its per-architecture settings (and `depth`), a
sweep's value, then the global overrides.
A global `task.<p>` applies to every task of the run that has parameter p, `arch.<f>` to
every architecture whose config has field f (it overrides the parameter budget, and the
record says so); naming a parameter no task or architecture of the run has is an error.
"""
from __future__ import annotations

import contextlib
import dataclasses
import enum
import importlib.util
import inspect
import itertools
import pathlib
import types
import typing
from typing import Any

import ml_collections
from ml_collections import config_dict

from archbench import archs
from archbench import data
from archbench.benchmarks.core import (PRECISIONS, Cell, Execution, TrainConfig, UsageError,
                                       usage_errors)
from archbench.benchmarks.harness import evaluators as evaluators_lib
from archbench.benchmarks.harness import executors
from archbench.benchmarks.harness import slurm as slurm_lib
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.results import trackers as trackers_lib
from archbench.benchmarks.results import wandb_runs

SUITES_DIR = pathlib.Path(__file__).resolve().parent / 'suites'
REPRODUCTIONS_DIR = pathlib.Path(__file__).resolve().parent / 'reproductions'
# How `archbench claims` runs its cells (executor, workers, ...): the sections a user may
# override there; the claims' experiments are their own.
CLAIMS_RUN_FILE = SUITES_DIR / '_claims.py'
CLAIMS_RUN_SECTIONS = ('executor', 'workers', 'ray', 'slurm', 'log', 'tensorboard',
                       'execution')
# A reproduction file's get_config(size) builds each size; NAME is the full size (the
# paper's budget), NAME-cpu the reduced one (results/reproduction.py).
REPRODUCTION_SIZES = {'': 'full', '-cpu': 'cpu'}
GLOBAL_SECTIONS = ('train', 'task', 'arch')
PLAN_FIELDS = ('params', 'train', 'archs', 'arch_train', 'arch_config', 'arch_variants',
               'sweep', 'seeds', 'arch_seeds', 'batch_sizes', 'eval_lengths', 'evaluators')
# What each point of a sweep records: 'length' marks an accuracy-versus-length point
# (lrd/length, the long-range tables); 'cost' a cost-versus-length point, which also times
# forward-only inference (the scaling fit, results/scaling.py).
SWEEP_PROBES = ('length', 'cost')


# What `archbench tune` does with a suite unless the suite says otherwise (suite_config's
# `tuning`): 8 trials per (architecture, task) at the points of a scrambled Sobol' sequence
# (seed 0), each trained on seed 0, the point of the best mean validation metric selected.
# The space is of training fields; arch_space adds each architecture's own declared options
# (ArchSpec.search_space: dropout, positional encoding).
TUNING = {
    'trials': 8, 'sampler': 'sobol', 'seed': 0, 'seeds': (0,), 'rule': 'mean',
    'arch_space': True,
    'space': {'lr': {'scale': 'log', 'low': 1e-4, 'high': 3e-2},
              'warmup_steps': {'scale': 'int', 'low': 0, 'high': 100},
              'weight_decay': {'scale': 'linear', 'low': 0.0, 'high': 0.1}},
}


# ---------------------------------------------------------------------------------------
# Building suite configs (what suite files call).

def task_plan(params: dict | None = None, train: dict | None = None, *,
              archs: tuple[str, ...] | None = None, arch_train: dict | None = None,
              arch_config: dict | None = None,
              arch_variants: dict[str, dict[str, tuple]] | None = None,
              sweep: tuple[str, tuple] | None = None,
              gradient_probe_at: tuple = (), sweep_probe: str = 'length',
              seeds: tuple[int, ...] | None = None,
              arch_seeds: dict[str, tuple[int, ...]] | None = None,
              batch_sizes: tuple[int, ...] | None = None,
              eval_lengths: tuple[int, ...] = (),
              evaluators: tuple[str, ...] = ()) -> dict[str, Any]:
  """How a suite runs one task; `suite_config` completes it with the defaults.

  sweep: ('length', (16, 32, 64)) makes one cell per value, each recording lrd/length; the
  gradient probe runs on the cells whose value is in `gradient_probe_at`.
  sweep_probe: 'cost' makes the sweep's points cost-versus-length points instead: they
  also time forward-only inference, skip the held-out evaluation, and are fitted by
  results/scaling.py.
  batch_sizes: one cell per training batch size (each point of a sweep at each), in place
  of train's batch_size: how cost grows with the batch as well as the length. An
  architecture's own batch_size in arch_train still wins (one batch size for it).
  seeds, arch_seeds: seeds for this task, or for one architecture on it, in place of the
  suite's: more seeds where results vary from seed to seed, not everywhere.
  eval_lengths: length generalisation: train at the task's `length` (and `min_length`),
  then also evaluate at each of these lengths (evaluator 'lengths').
  evaluators: evaluators to run on this task's cells, by name, on top of the suite's.
  arch_variants: {arch: {field: values}}: one cell per value (per combination, for several
  fields) of these backbone settings for that architecture, each on top of its
  arch_config; e.g. the Chomsky paper's Transformer over its positional encodings, whose
  best the paper reports (a reproduction's seed rule then aggregates over the variants
  and the seeds together). A global `arch.<f>` override of such a field pins it.
  """
  return {'params': dict(params or {}), 'train': dict(train or {}), 'archs': archs,
          'arch_train': dict(arch_train or {}), 'arch_config': dict(arch_config or {}),
          'arch_variants': {a: {f: tuple(v) for f, v in fields.items()}
                            for a, fields in (arch_variants or {}).items()},
          'sweep': sweep, 'gradient_probe_at': tuple(gradient_probe_at),
          'sweep_probe': sweep_probe, 'seeds': seeds,
          'arch_seeds': {a: tuple(v) for a, v in (arch_seeds or {}).items()},
          'batch_sizes': batch_sizes, 'eval_lengths': tuple(eval_lengths),
          'evaluators': tuple(evaluators)}


def suite_config(name: str, doc: str, size: str, tasks: dict[str, dict], *,
                 train: dict | None = None, archs: tuple[str, ...] | None = None,
                 seeds: tuple[int, ...] = (0,), depth: int | None = None, workers: int = 1,
                 fast_compile: bool = False, execution: dict | None = None,
                 precision: str = 'float32', executor: str = 'local',
                 evaluators: tuple[str, ...] = (),
                 tuning: dict | None = None) -> ml_collections.ConfigDict:
  """A suite's ConfigDict. `train` holds the suite's training defaults, which each task's
  own `train` settings refine. `depth` runs every backbone at that depth (its declared depth
  fields) instead of its default: compile time grows with depth. `workers` > 1 runs cells
  in that many processes (compile-bound suites only: timings are then not comparable).
  `execution` sets core.Execution's fields (time limit, checkpoints, devices). `precision`
  is every cell's (core.PRECISIONS); `executor` one of harness.executors.Executor;
  `evaluators` run on every cell (by name; harness/evaluators). `tuning` refines
  TUNING, what `archbench tune` does with the suite (its `space`, if given, replaces the
  default space whole)."""
  c = ml_collections.ConfigDict(sort_keys=False)
  c.name, c.doc, c.size, c.seeds = name, inspect.cleandoc(doc), size, tuple(seeds)
  c.archs = _maybe(archs, tuple)
  c.depth = _maybe(depth, int)
  c.workers, c.fast_compile = workers, fast_compile
  c.precision, c.executor = precision, executor
  c.log = {'tensorboard': False, 'wandb': False, 'wandb_project': wandb_runs.DEFAULT_PROJECT,
           'wandb_entity': config_dict.placeholder(str),
           'wandb_mode': config_dict.placeholder(str),
           'wandb_dir': config_dict.placeholder(str)}
  c.tensorboard = False  # log.tensorboard's older spelling: commands that say it still work
  c.evaluators = tuple(evaluators)
  c.tuning = {**TUNING, **(tuning or {})}
  c.tuning.seeds = tuple(c.tuning.seeds)
  c.ray = {'address': config_dict.placeholder(str), 'num_cpus_per_cell': 1.0,
           'num_gpus_per_cell': config_dict.placeholder(float)}
  slurm = slurm_lib.SlurmOptions()
  c.slurm = {'partition': config_dict.placeholder(str), 'time': slurm.time,
             'cpus_per_cell': slurm.cpus_per_cell, 'gpus_per_cell': slurm.gpus_per_cell,
             'mem_gb': config_dict.placeholder(float), 'extra': {},
             'folder': config_dict.placeholder(str), 'local': slurm.local}
  defaults = Execution(**(execution or {}))
  c.execution = {k: _maybe(getattr(defaults, k), _hint_type(hint))
                 for k, hint in typing.get_type_hints(Execution).items()}
  c.tasks = ml_collections.ConfigDict(sort_keys=False)
  for task_name, plan in tasks.items():
    c.tasks[task_name] = _complete_plan(task_name, plan, train or {})
  c.train = {k: config_dict.placeholder(_hint_type(t))
             for k, t in typing.get_type_hints(TrainConfig).items()}
  c.task = {k: config_dict.placeholder(t) for k, t in _task_param_types().items()}
  c.arch = {k: config_dict.placeholder(t) for k, t in _arch_field_types().items()}
  return c


def _maybe(value, kind):
  return config_dict.placeholder(kind) if value is None else kind(value)


def _complete_plan(task_name: str, plan: dict, suite_train: dict) -> ml_collections.ConfigDict:
  with usage_errors():
    entry = data.get(task_name)
  unknown = set(plan['params']) - set(entry.defaults)
  if unknown:
    raise UsageError(f'suite plan for {task_name}: no parameter(s) {", ".join(sorted(unknown))}'
                     f'; valid: {", ".join(entry.defaults)}')
  train = dataclasses.asdict(TrainConfig(**{**suite_train, **plan['train']}))
  sweep = plan['sweep']
  if plan['sweep_probe'] not in SWEEP_PROBES:
    raise UsageError(f'suite plan for {task_name}: sweep_probe {plan["sweep_probe"]!r}; '
                     f'valid: {", ".join(SWEEP_PROBES)}')
  if plan['sweep_probe'] == 'cost' and plan['gradient_probe_at']:
    raise UsageError(f'suite plan for {task_name}: a cost sweep trains too few steps for '
                     'a gradient probe; drop gradient_probe_at')
  if sweep and plan['sweep_probe'] == 'cost' and plan.get('eval_lengths'):
    raise UsageError(f'suite plan for {task_name}: a cost sweep skips the held-out '
                     'evaluation; drop eval_lengths')
  return ml_collections.ConfigDict({
      'params': {**entry.defaults, **plan['params']},
      'train': train,
      'archs': _maybe(plan['archs'], tuple),
      'arch_train': plan['arch_train'],
      'arch_config': plan['arch_config'],
      'arch_variants': plan.get('arch_variants', {}),
      'sweep': {'param': _maybe(sweep and sweep[0], str),
                'points': _maybe(sweep and sweep[1], tuple),
                'gradient_probe_at': tuple(plan['gradient_probe_at']),
                'probe': plan['sweep_probe']},
      'seeds': _maybe(plan['seeds'], tuple),
      'arch_seeds': plan['arch_seeds'],
      'batch_sizes': _maybe(plan['batch_sizes'], tuple),
      'eval_lengths': tuple(plan.get('eval_lengths', ())),
      'evaluators': tuple(plan.get('evaluators', ())),
  })


def execution(config) -> Execution:
  """The run's core.Execution from the suite's `execution` section."""
  with _invalid('config'):
    return Execution(**{k: v for k, v in config.execution.items()})


def executor(config) -> dict[str, Any]:
  """run_suite's dispatch arguments from the suite's `executor`, `workers`, `ray` and
  `slurm` (checked whatever the executor: a bad setting is an error, not a silent no-op)."""
  name = config.get('executor', 'local')
  valid = [e.value for e in executors.Executor]
  if name not in valid:
    raise UsageError(f'config.executor {name!r} is not known; valid: {", ".join(valid)}')
  ray = config.get('ray') or {}
  try:
    slurm = slurm_lib.SlurmOptions.from_settings(config.get('slurm'))
  except UsageError as e:
    raise UsageError(f'config.{e}') from None
  dispatch = {'executor': name, 'ray_address': ray.get('address'),
              'ray_cpus_per_cell': ray.get('num_cpus_per_cell', 1.0),
              'ray_gpus_per_cell': ray.get('num_gpus_per_cell')}
  if name == executors.Executor.SLURM.value:
    dispatch['slurm'] = slurm.to_dict()
  return dispatch


def trackers(config) -> dict[str, Any]:
  """run_suite's `log` from the suite's `log` section (and `tensorboard`, its older
  spelling): results/trackers.py's Settings as a plan keeps them, W&B's mode resolved and
  its directory absolute, so that --resume writes where the run began to; {} when no
  tracker is asked for."""
  log = dict(config.get('log') or {})
  if log.get('wandb_mode') is not None or log.get('wandb'):
    log['wandb_mode'] = wandb_runs.resolve_mode(log.get('wandb_mode'))
  else:
    log['wandb_mode'] = 'offline'
  if log.get('wandb') and log.get('wandb_dir'):
    directory = pathlib.Path(log['wandb_dir']).expanduser().absolute()
    try:
      directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
      raise UsageError(f'config.log.wandb_dir {directory}: cannot create it ({e.strerror})'
                       ) from None
    log['wandb_dir'] = str(directory)
  settings = trackers_lib.Settings.of(log, tensorboard=bool(config.get('tensorboard')))
  return settings.to_dict() if settings.any() else {}


def _hint_type(hint) -> type | None:
  """The command-line type of a config field's annotation: int, float, bool, str (enums by
  value) or tuple; Optional[X] as X; None for anything else (not overridable)."""
  if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
    inner = [a for a in typing.get_args(hint) if a is not type(None)]
    return _hint_type(inner[0]) if len(inner) == 1 else None
  if typing.get_origin(hint) is tuple or hint is tuple:
    return tuple
  if isinstance(hint, type) and issubclass(hint, enum.Enum):
    return str
  return hint if hint in (bool, int, float, str) else None


def _merge_types(found: dict[str, set]) -> dict[str, type]:
  """One type per name; an int in one place and a float in another read as float."""
  out = {}
  for name, kinds in sorted(found.items()):
    kinds.discard(None)
    if kinds == {int, float}:
      kinds = {float}
    if len(kinds) == 1:
      out[name] = kinds.pop()
  return out


def _task_param_types() -> dict[str, type]:
  found: dict[str, set] = {}
  for name in data.names():
    hints = typing.get_type_hints(data.get(name).make)
    for param in data.get(name).defaults:
      found.setdefault(param, set()).add(_hint_type(hints.get(param)))
  return _merge_types(found)


def _arch_field_types() -> dict[str, type]:
  found: dict[str, set] = {}
  for name in archs.names():
    config_type = type(archs.get(name).config_for_width(8 * archs.get(name).width_step))
    for field, hint in typing.get_type_hints(config_type).items():
      found.setdefault(field, set()).add(_hint_type(hint))
  return _merge_types(found)


# ---------------------------------------------------------------------------------------
# Finding and loading suites.

def suite_files() -> dict[str, pathlib.Path]:
  """Built-in suites: name (the file's stem, '_' read as '-') -> file."""
  return {p.stem.replace('_', '-'): p for p in sorted(SUITES_DIR.glob('*.py'))
          if not p.stem.startswith('_')}


def suite_path(name: str) -> pathlib.Path:
  files = suite_files()
  if name not in files:
    raise UsageError(f'unknown suite {name!r}; valid: {", ".join(files)} '
                     '(or --config=PATH to a suite file of your own)')
  return files[name]


def load(name_or_path: str) -> ml_collections.ConfigDict:
  """A suite's config by built-in name, or from a file defining get_config(); 'FILE:ARG'
  passes ARG to get_config, as config_flags does."""
  path_text, _, arg = name_or_path.partition(':') if name_or_path.count(':') == 1 \
      else (name_or_path, '', '')
  path = pathlib.Path(path_text)
  if not path.suffix == '.py':
    path = suite_path(path_text)
  if not path.is_file():
    raise UsageError(f'no suite file {path}')
  module_spec = importlib.util.spec_from_file_location(f'_archbench_suite_{path.stem}', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise UsageError(f'{path} defines no get_config()')
  return module.get_config(arg) if arg else module.get_config()


def reproductions() -> dict[str, tuple[pathlib.Path, str]]:
  """Built-in reproductions: name -> (file, size), both sizes of every file in
  benchmarks/reproductions/ ('_' in a file's stem read as '-')."""
  return {p.stem.replace('_', '-') + suffix: (p, size)
          for p in sorted(REPRODUCTIONS_DIR.glob('*.py')) if not p.stem.startswith('_')
          for suffix, size in REPRODUCTION_SIZES.items()}


def load_reproduction(name: str) -> ml_collections.ConfigDict:
  """A reproduction's config (a suite config with a `reproduction` field)."""
  known = reproductions()
  if name not in known:
    raise UsageError(f'unknown reproduction {name!r}; valid: {", ".join(known)} (or a run '
                     'directory to re-run and compare)')
  path, size = known[name]
  return load(f'{path}:{size}')


def summary(config) -> str:
  return config.doc.strip().splitlines()[0] if config.doc else config.name


def flatten(config, prefix: str = '') -> dict[str, Any]:
  """{'tasks.adding.train.steps': 600, ...}: every overridable path and its value."""
  out = {}
  for key, value in config.items():
    path = f'{prefix}{key}'
    if isinstance(value, ml_collections.ConfigDict):
      out.update(flatten(value, path + '.'))
    else:
      out[path] = value
  return out


# ---------------------------------------------------------------------------------------
# Resolving a suite config into cells.

def cells(config, archs_filter=None, tasks_filter=None, size=None, seeds=None) -> list[Cell]:
  """The suite's cells, narrowed by the CLI's filters and with the global overrides
  applied. Explicitly requested pairs that cannot run raise UsageError; unrequested
  incompatible pairs are skipped. Identical cells (same digest) run once. `seeds` (the
  CLI's --seed) replaces every seed setting; else a pair's arch_seeds, else its task's
  seeds, else the suite's."""
  size = size or config.size
  forced_seeds = seeds
  seeds = list(seeds if seeds is not None else config.seeds)
  default_archs = list(config.archs or archs.names())
  task_names = list(tasks_filter or config.tasks.keys())
  with usage_errors():
    for name in archs_filter or []:
      archs.get(name)
    for name in task_names:
      data.get(name)
    archs.registry.budget(size)
  if not seeds:
    raise UsageError('config.seeds is empty; give at least one seed')
  precision = config.get('precision', 'float32')
  if precision not in PRECISIONS:
    raise UsageError(f'config.precision {precision!r} is not known; valid: '
                     f'{", ".join(PRECISIONS)}')
  overrides = {section: {k: v for k, v in config[section].items() if v is not None}
               for section in GLOBAL_SECTIONS}
  suite_evaluators = _evaluator_names(config.get('evaluators', ()))
  used = {'task': set(), 'arch': set()}
  out: dict[str, Cell] = {}
  for task_name in task_names:
    plan = config.tasks[task_name] if task_name in config.tasks else None
    base_params = dict(plan.params) if plan else dict(data.get(task_name).defaults)
    task_overrides = {k: v for k, v in overrides['task'].items() if k in base_params}
    used['task'] |= set(task_overrides)
    with _invalid(f'task {task_name}'):
      spec = data.spec_of(task_name, **{**base_params, **task_overrides})
    plan_archs = plan.archs if plan else None
    cell_evaluators = suite_evaluators + _evaluator_names(plan.get('evaluators', ())
                                                          if plan else ())
    for arch_name in list(archs_filter or plan_archs or default_archs):
      arch = archs.get(arch_name)
      reason = model_lib.incompatibility(arch, spec)
      if reason:
        if archs_filter and tasks_filter:
          raise UsageError(f'cannot run {arch_name} on {task_name}: {reason}')
        continue
      trains = []
      for batch_size in (plan.batch_sizes if plan and plan.batch_sizes else (None,)):
        train = {**(plan.train if plan else {}),
                 **({'batch_size': batch_size} if batch_size is not None else {}),
                 **(plan.arch_train.get(arch_name, {}) if plan else {}),
                 **overrides['train']}
        with _invalid(f'{arch_name} on {task_name}'):
          trains.append(TrainConfig(**train))
      arch_fields = {f.name for f in dataclasses.fields(arch.config_for_width(
          8 * arch.width_step))}
      arch_overrides = {k: v for k, v in overrides['arch'].items() if k in arch_fields}
      used['arch'] |= set(arch_overrides)
      backbones = [{**(plan.arch_config.get(arch_name, {}) if plan else {}), **variant,
                    **arch.depth_overrides(config.depth), **arch_overrides}
                   for variant in _variants(plan, arch_name)]
      # Settings the suite gives this architecture alone: the records say so, apart from the
      # settings every architecture shares (what `archbench tune` gives them instead).
      per_arch = {k: v for k, v in (
          ('train', {f: x for f, x in (plan.arch_train.get(arch_name, {}) if plan else {})
                     .items() if f not in overrides['train']}),
          ('arch', {f: x for f, x in (plan.arch_config.get(arch_name, {}) if plan else {})
                    .items() if f not in arch_overrides})) if v}
      settings_from = {'from': 'suite', 'per_arch': per_arch} if per_arch else {}
      pair_seeds = seeds
      if forced_seeds is None and plan is not None:
        pair_seeds = plan.arch_seeds.get(arch_name) or plan.seeds or seeds
      for params, probes in _points(plan, base_params, task_overrides):
        params = {**params, **task_overrides}
        for backbone, train, seed in itertools.product(backbones, trains, pair_seeds):
          with _invalid(f'{arch_name} on {task_name}'):
            cell = Cell(arch_name, task_name, size, int(seed), params, dict(backbone), train,
                        bool(config.fast_compile), probes, precision,
                        tuple(plan.get('eval_lengths', ()) if plan else ()),
                        cell_evaluators, settings_from)
          out.setdefault(cell.digest, cell)
  for section in ('task', 'arch'):
    unused = set(overrides[section]) - used[section]
    if unused:
      what = 'task in this run has that parameter' if section == 'task' else \
          'architecture in this run has that config field'
      raise UsageError(f'config.{section}.{sorted(unused)[0]} was set but no {what} '
                       f'(tasks: {", ".join(task_names)})')
  if not out:
    raise UsageError(
        f'no architecture in {",".join(archs_filter or default_archs)} can run any task '
        f'in {",".join(task_names)} in suite {config.name}')
  return list(out.values())


def _evaluator_names(names) -> tuple[str, ...]:
  """Evaluator names, checked against the registry; 'a,b' (one command-line value) is two."""
  out = tuple(n.strip() for name in names or () for n in str(name).split(',') if n.strip())
  with usage_errors():
    for name in out:
      evaluators_lib.get(name)
  return out


def _variants(plan, arch_name: str) -> list[dict[str, Any]]:
  """The backbone settings of each variant cell a plan makes for `arch_name` (see
  task_plan's arch_variants): [{}] where it declares none."""
  fields = dict((plan.get('arch_variants') or {}).get(arch_name, {})) if plan else {}
  return [dict(zip(fields, values)) for values in itertools.product(*fields.values())]


def _points(plan, params, overrides) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
  """(task parameters, probes) of each cell a plan makes per architecture and seed. A
  global override of the swept parameter pins it: the sweep is then one plain cell."""
  if plan is None or plan.sweep.param is None or plan.sweep.param in overrides:
    return [(params, ())]
  name, values = plan.sweep.param, plan.sweep.points or ()
  if name not in params:
    raise UsageError(f'sweep over {name!r}, which the task has not; valid: {", ".join(params)}')
  probe_at, marker = tuple(plan.sweep.gradient_probe_at), plan.sweep.probe
  return [({**params, name: v}, (marker, 'gradient') if v in probe_at else (marker,))
          for v in values]


@contextlib.contextmanager
def _invalid(where: str):
  """A bad value found while resolving (ValueError, TypeError, KeyError) becomes a
  UsageError that says where it was found."""
  try:
    yield
  except (ValueError, TypeError, KeyError) as error:
    message = str(error.args[0] if error.args else error)
    raise UsageError(message if message.startswith(where.split()[0]) else
                     f'{where}: {message}') from None


def explain_override_error(suite, argv: list[str], error: Exception) -> str | None:
  """One line for the --config.<path>=<value> in argv that config_flags refused with
  `error`: the bad key and the valid ones there, or the bad value and the type expected;
  None when no override of `suite` is to blame. The override whose path the error names
  is looked at first (another's value may appear in the error's text: 'slurm')."""
  def named(arg: str) -> bool:
    return arg[len('--'):].partition('=')[0] in str(error)
  for arg in sorted(argv, key=lambda a: not named(a)):
    if suite is None or not arg.startswith('--config.'):
      continue
    path, _, value = arg[len('--config.'):].partition('=')
    node, walked = suite, []
    for key in path.split('.'):
      if hasattr(node, 'keys') and not node.keys() and walked:  # a dict set whole
        return (f'unknown config key config.{path}; config.{".".join(walked)} is a dict, '
                f'set whole: --config.{".".join(walked)}="{{\'{key}\': ...}}"')
      if not hasattr(node, 'keys') or key not in node.keys():
        where = f'under config.{".".join(walked)}' if walked else 'at the top'
        valid = ', '.join(node.keys()) if hasattr(node, 'keys') else 'none (a leaf)'
        return f'unknown config key config.{path}; valid keys {where}: {valid}'
      parent, node, walked = node, node[key], [*walked, key]
    if value and value in str(error):
      kind = parent.get_ref(walked[-1]).get_type()
      return f'bad value for config.{path}: {value!r} (expected {kind.__name__})'
  return None
