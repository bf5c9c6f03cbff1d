"""Weights & Biases runs of a suite run, for runs that set `log.wandb`
(`--config.log.wandb=True`; the `wandb` extra: pip install 'archbench[wandb]').

Each finished cell becomes one W&B run, written by the driver from the cell's record (the
W&B tracker, trackers.py):

  name      arch-task-size-s<seed>-<cell_id[:8]>, as its TensorBoard directory
  group     the suite run's run_id; job_type: the suite's name
  tags      suite, arch, task, size, status
  config    the record's identity (suite, run_id, arch, task, size, seed, cell_id, status)
            and, under `config`, `env` and `ran_on`, those parts of the record
  history   the record's curves (train/loss, val/<metric>, ...) merged by step, each step
            logged once and in increasing order (W&B ignores a step below one it has);
            a point that is not a finite number (JSON null: a diverged loss) is left out
  summary   the record's final metrics as they are named there (eval/..., val/...,
            train/...), perf as perf/<key>, status and error
  state     a cell that did not finish `ok` ends as a failed W&B run

When the suite run completes, one more run (job_type 'suite', named by the run_id, in the
same group) holds the run's files, results.jsonl, run.json, summary.md, summary.csv and
report.html, as one artifact of type 'archbench-run' named <suite>-run, and counts the
records by status in its summary.

Run ids derive from the suite run's run_id and the cell's cell_id. A cell recorded again
(a resumed run re-runs a cell whose record was torn) is therefore the same W&B run: offline,
its earlier directory is replaced, so `wandb sync` sends it once; online, resume='allow'
continues it. Another suite run of the same cells makes other W&B runs.

Offline unless asked otherwise: `log.wandb_mode` if set, else WANDB_MODE if exported, else
offline. Offline runs are written under <wandb_dir>/wandb/offline-run-*/ (wandb_dir: the
run's directory unless `log.wandb_dir` says), without touching the network or asking for a
login; `wandb sync <wandb_dir>/wandb/offline-run-*` uploads them later. An artifact's files
are copied into its run's directory, so that directory syncs from any machine. W&B writes
through a service process (wandb-core) it starts at the first run; close() stops it.
"""
from __future__ import annotations

import hashlib
import math
import os
import pathlib
import re
import shutil
from typing import Any

from archbench.benchmarks.core import UsageError
from archbench.benchmarks.results import records as records_lib
from archbench.benchmarks.results.tensorboard_events import cell_name

DEFAULT_PROJECT = 'archbench'
MODES = ('offline', 'online')  # what config.log.wandb_mode takes
RESOLVED_MODES = (*MODES, 'disabled')  # and WANDB_MODE=disabled: no W&B runs at all
# WANDB_MODE's values as wandb itself reads them ('dryrun' and 'run' are its old names);
# 'shared' (several processes writing one run) is not what this tracker does.
ENV_MODES = {'offline': 'offline', 'dryrun': 'offline', 'online': 'online', 'run': 'online',
             'disabled': 'disabled'}
RESERVED = '/\\#?%:'  # characters W&B refuses in run ids, projects and entities
ARTIFACT_FILES = ('results.jsonl', 'run.json', 'summary.md', 'summary.csv', 'report.html')
ARTIFACT_TYPE = 'archbench-run'
# wandb.Settings for runs written after the fact, by a driver with a live display: no
# console capture, no system metrics, metadata, git state, code or `pip freeze` (the
# record's env holds the provenance), no job artifact. Fields this wandb lacks are left
# out (they move between versions).
SETTINGS = {'silent': True, 'console': 'off', 'x_disable_stats': True, 'x_disable_meta': True,
            'x_disable_machine_info': True, 'disable_git': True, 'save_code': False,
            'x_save_requirements': False, 'disable_job_creation': True}


def check_name(what: str, value) -> None:
  """A W&B project or entity name: not empty, no surrounding spaces, none of RESERVED."""
  if (not isinstance(value, str) or not value.strip() or value != value.strip()
      or any(c in RESERVED for c in value)):
    raise UsageError(f'{what} {value!r}: give a W&B name, not empty and without any of '
                     f'{" ".join(RESERVED)}')


def resolve_mode(configured: str | None, environ=None) -> str:
  """The W&B mode a run writes in: `configured` (config.log.wandb_mode) if set, else
  WANDB_MODE if the user exported it, else offline: a benchmark run may have no network,
  and an offline run can be synced later, an unsent online one cannot."""
  if configured is not None:
    if configured not in MODES:
      raise UsageError(f'config.log.wandb_mode {configured!r}; valid: {", ".join(MODES)} '
                       '(unset: WANDB_MODE if exported, else offline)')
    return configured
  exported = (os.environ if environ is None else environ).get('WANDB_MODE')
  if not exported:
    return 'offline'
  if exported not in ENV_MODES:
    raise UsageError(f'WANDB_MODE={exported!r} is not a mode archbench writes W&B runs in; '
                     f'valid: {", ".join(ENV_MODES)} (or unset it, or set '
                     'config.log.wandb_mode)')
  return ENV_MODES[exported]


def require(mode: str = 'offline') -> None:
  """Refuses a run that asks for W&B runs without wandb, or online without credentials
  (wandb.init would then prompt for a login in the middle of the run), before it starts."""
  try:
    import wandb
  except ImportError:
    raise UsageError("config.log.wandb needs wandb: pip install 'archbench[wandb]'") from None
  if mode == 'online' and _credentials(wandb) is False:
    raise UsageError('config.log.wandb_mode=online needs W&B credentials (`wandb login`, or '
                     'WANDB_API_KEY); or write offline (the default) and `wandb sync` later')


def _credentials(wandb) -> bool | None:
  """Whether W&B credentials are configured (its environment, settings files, .netrc),
  read locally without prompting or reaching the server; None where this wandb does not
  say (then wandb.init decides)."""
  try:
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth
    host = wandb_setup.singleton().settings.base_url
    return wbauth.authenticate_session(host=host, source='archbench', prompt=False,
                                       verify=False, update_session=False) is not None
  except wandb.errors.AuthenticationError:  # credentials found, but malformed
    return False
  except (ImportError, AttributeError, TypeError):
    return None


def run_ids(run_id: str, cell_id: str | None = None) -> str:
  """The W&B run id of a cell of suite run `run_id` (cell_id-<digest of run_id>), or of the
  suite run itself (suite-<digest>): the same on every call, for resume; free of
  RESERVED (a run_id holds the ':' of its UTC time)."""
  digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
  return f'{cell_id}-{digest}' if cell_id else f'suite-{digest}'


def _finite(value) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def history(record) -> list[tuple[int, dict[str, float]]]:
  """The record's curves as W&B history: [(step, {key: value})], steps increasing, each
  step once with every curve that has a point there."""
  steps: dict[int, dict[str, float]] = {}
  for key, curve in (record.get('curves') or {}).items():
    for step, value in curve or ():
      if _finite(value):
        steps.setdefault(int(step), {})[key] = float(value)
  return sorted(steps.items())


def summary(record) -> dict[str, Any]:
  """The run summary: final metrics under their own keys, perf/<key>, status and error."""
  return {**(record.get('metrics') or {}),
          **{f'perf/{k}': v for k, v in (record.get('perf') or {}).items()},
          'status': record.get('status'), 'error': record.get('error')}


IDENTITY = ('suite', 'run_id', 'arch', 'task', 'size', 'seed', 'cell_id', 'status')


def config(record) -> dict[str, Any]:
  """The run config: the record's identity, then its resolved config, env and ran_on."""
  return {**{k: record.get(k) for k in IDENTITY},
          **{k: record[k] for k in ('config', 'env', 'ran_on') if record.get(k) is not None}}


def tags(record) -> list[str]:
  return [str(record.get(k))[:64] for k in ('suite', 'arch', 'task', 'size', 'status')
          if record.get(k) is not None]


def _offline_dirs(root: pathlib.Path, run_id: str) -> list[pathlib.Path]:
  """The offline runs of W&B run id `run_id` under root/wandb (offline-run-<time>-<id>)."""
  pattern = re.compile(r'offline-run-\d{8}_\d{6}-' + re.escape(run_id))
  base = root / 'wandb'
  return [p for p in base.iterdir() if pattern.fullmatch(p.name)] if base.is_dir() else []


class WandB:
  """The W&B tracker (trackers.py): one run per cell, one for the suite run at its end."""
  name = 'W&B'

  def __init__(self, project: str = DEFAULT_PROJECT, entity: str | None = None,
               mode: str = 'offline', directory: str | None = None):
    self.project, self.entity, self.mode, self.directory = project, entity, mode, directory
    self.root: pathlib.Path | None = None
    self.run_info: dict[str, Any] = {}
    self._wandb = None
    self._teardown = False

  def start(self, out_dir: pathlib.Path, run_info: dict[str, Any]) -> None:
    import wandb
    self.root = pathlib.Path(self.directory) if self.directory else pathlib.Path(out_dir)
    self.root.mkdir(parents=True, exist_ok=True)
    self.run_info = dict(run_info)
    # W&B's service outlives its runs; stop it at the end unless this process had a run of
    # its own before (a user's, in a notebook): teardown would finish that run too.
    self._wandb, self._teardown = wandb, wandb.run is None

  def _init(self, run_id: str, **kwargs):
    """A new W&B run with id `run_id`, after removing earlier offline runs of that id."""
    wandb = self._wandb
    if self.mode == 'offline':
      for earlier in _offline_dirs(self.root, run_id):
        shutil.rmtree(earlier, ignore_errors=True)
    fields = getattr(wandb.Settings, 'model_fields', {})
    settings = wandb.Settings(**{k: v for k, v in SETTINGS.items() if k in fields})
    return wandb.init(project=self.project, entity=self.entity, dir=str(self.root),
                      mode=self.mode, id=run_id, group=self.run_info.get('run_id'),
                      reinit='create_new', resume='allow', settings=settings, **kwargs)

  def write_cell(self, record: dict[str, Any]) -> None:
    if self.mode == 'disabled':
      return
    run = self._init(run_ids(self.run_info['run_id'], record.get('cell_id') or
                             cell_name(record)),
                     name=cell_name(record), job_type=self.run_info.get('suite'),
                     tags=tags(record), config=config(record),
                     notes=record.get('error') or None)
    written = False
    try:
      for step, values in history(record):
        run.log(values, step=step, commit=True)  # committed now: before the summary
      run.summary.update(summary(record))
      written = True
    finally:
      run.finish(exit_code=0 if written and record.get('status') == 'ok' else 1)

  def finish(self, out_dir: pathlib.Path) -> None:
    """The suite run: the run's files as one artifact, and the records counted by status."""
    if self.mode == 'disabled':
      return
    wandb, run_id = self._wandb, self.run_info['run_id']
    path = out_dir / 'results.jsonl'
    found = records_lib.load_records(path) if path.is_file() else []
    statuses: dict[str, int] = {}
    for record in found:
      statuses[record.get('status')] = statuses.get(record.get('status'), 0) + 1
    suite = str(self.run_info.get('suite'))
    run = self._init(run_ids(run_id), name=run_id, job_type='suite', tags=[suite[:64]],
                     config=self.run_info)
    try:
      # The files as they are now, inside the run's directory: the artifact is then what
      # this run ended with, and the directory syncs on its own.
      copies = pathlib.Path(run.dir).parent / 'archbench-run'
      copies.mkdir(parents=True, exist_ok=True)
      artifact = wandb.Artifact(re.sub(r'[^A-Za-z0-9._-]+', '_', f'{suite}-run')[:128],
                                type=ARTIFACT_TYPE,
                                metadata={'run_id': run_id, 'records': len(found),
                                          'statuses': statuses})
      for name in ARTIFACT_FILES:
        if (out_dir / name).is_file():
          shutil.copyfile(out_dir / name, copies / name)
          artifact.add_file(str(copies / name), name=name, policy='immutable')
      run.log_artifact(artifact)
      run.summary.update({'records': len(found),
                          **{f'status/{k}': v for k, v in statuses.items()}})
    finally:
      run.finish()

  def close(self) -> None:
    if self._wandb is not None and self._teardown:
      self._wandb.teardown()
    self._wandb = None
