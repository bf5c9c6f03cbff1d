"""The `slurm` executor: each cell a Slurm job, submitted with submitit (one job array for
the cells a driver submits at once); with `slurm.local`, each cell a submitit job on this
machine instead (its LocalExecutor: no Slurm needed, which is how CI and a laptop try this
path).

The driver (suite.run_suite) submits the cells still to run, notes each cell's job id in
OUT/slurm/jobs.json, waits, and yields each job's record as the job finishes; it alone
writes results.jsonl. A job that ends without a record (killed for memory, a node lost, a
plug-in that would not load) is an exception outcome: its cell gets an `error` record that
says why, and the run goes on.

Preemption and time-out: Slurm signals a job (USR2) `signal_delay_s` before its time
limit, or when it is preempted; submitit then calls the job's `checkpoint()`, which
resubmits the same call, and requeues the job (after a time-out at most
MAX_TIMEOUTS times). The call holds no training state: the cell checkpoints itself under
OUT/checkpoints/<cell_id>/ as it trains (core.Execution; under slurm at least every
quarter of the job's time limit), and the requeued job continues from there.

Resume: `archbench run --resume OUT` re-attaches to the jobs of the cells without a record
that are still queued or running (squeue; sacct where squeue does not answer), or finished
without their record written (the driver was killed), and submits only the others, which
continue from their checkpoints. A job that dies without a result is seen through sacct
(submitit's watcher) or, on a cluster without accounting, through squeue.

submitit is an optional extra (`pip install 'archbench[slurm]'`), imported here only when
a slurm run starts or a job runs.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import pathlib
import pickle
import shlex
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Iterator, Mapping

from absl import logging

from archbench.benchmarks import plugins
from archbench.benchmarks.core import Cell, Execution, UsageError, one_line
from archbench.common import files

INSTALL_SLURM = "pip install 'archbench[slurm]'"
SETTINGS = ('partition', 'time', 'cpus_per_cell', 'gpus_per_cell', 'mem_gb', 'extra',
            'folder', 'local')
# sbatch options that submitit sets itself and reads back (log paths, array, signal).
RESERVED = ('output', 'error', 'array', 'signal', 'open-mode')
# Lines of a job's log that say nothing of why it ended: submitit's and CellJob's own.
OWN_LOG_LINES = ('submitit ', 'INFO:submitit', 'WARNING:submitit', 'archbench: job ')
JOBS_FILE = 'jobs.json'  # under OUT/slurm/: cell_id -> the job that runs it
MAX_TIMEOUTS = 3  # requeues after a time-out (submitit's default); preemptions are not counted
# How run_cell records submitit giving up on a job (CellJob makes it the cell's timeout).
TIMED_OUT = 'UncompletedJobError: Job not requeued because: timed-out too many times'
# Slurm states of a job that will still produce its result (submitit's own list, plus the
# transient states sacct reports on the way).
UNFINISHED = ('READY', 'PENDING', 'RUNNING', 'REQUEUED', 'COMPLETING', 'PREEMPTED',
              'CONFIGURING', 'RESIZING', 'SUSPENDED', 'REQUEUE_HOLD', 'REQUEUE_FED')


def _whole(value) -> int | None:
  """`value` as an int when it is a whole number (not a bool), else None."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return None
  return int(value) if float(value).is_integer() else None


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
  """What each cell's job asks for. partition: Slurm's partition (None: the cluster's
  default). time: the job's time limit in minutes (Slurm gets whole minutes, rounded up; a
  job that reaches it is requeued and continues from its checkpoint). cpus_per_cell,
  gpus_per_cell, mem_gb: its CPUs, GPUs and memory (None: the partition's default). extra:
  any other sbatch options, {'qos': 'high', 'constraint': 'a100'} (submitit's
  slurm_additional_parameters). folder: submitit's folder for job files and logs (None:
  OUT/slurm). local: True runs the jobs on this machine with submitit's LocalExecutor,
  `workers` at once, each pinned to gpus_per_cell of its GPUs (0: the CPU); partition,
  mem_gb and extra are then unused."""
  partition: str | None = None
  time: float = 60.0
  cpus_per_cell: int = 1
  gpus_per_cell: int = 0
  mem_gb: float | None = None
  extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  folder: str | None = None
  local: bool = False

  def __post_init__(self):
    def bad(name, value, valid):
      raise UsageError(f'slurm.{name}: {value!r} is not valid; valid: {valid}')
    if self.partition is not None and (not isinstance(self.partition, str)
                                       or not self.partition.strip()):
      bad('partition', self.partition, "a partition's name, or None for the cluster's default")
    if isinstance(self.time, bool) or not isinstance(self.time, (int, float)) \
        or not 0 < self.time < math.inf:
      bad('time', self.time, 'a positive number of minutes')
    if _whole(self.cpus_per_cell) is None or self.cpus_per_cell < 1:
      bad('cpus_per_cell', self.cpus_per_cell, 'a whole number >= 1')
    if _whole(self.gpus_per_cell) is None or self.gpus_per_cell < 0:
      bad('gpus_per_cell', self.gpus_per_cell, 'a whole number >= 0 (0: no GPU)')
    if self.mem_gb is not None and (isinstance(self.mem_gb, bool)
                                    or not isinstance(self.mem_gb, (int, float))
                                    or not 0 < self.mem_gb < math.inf):
      bad('mem_gb', self.mem_gb, "a positive number of GB, or None for the partition's default")
    if not isinstance(self.local, bool):
      bad('local', self.local, 'True or False')
    if self.folder is not None and (not isinstance(self.folder, str) or not self.folder):
      bad('folder', self.folder, 'a directory, or None for OUT/slurm')
    if not isinstance(self.extra, Mapping):
      bad('extra', self.extra, "a dict of sbatch options, e.g. {'qos': 'high'}")
    for key, value in self.extra.items():
      if not isinstance(key, str) or key.startswith(('-', '_')) \
          or not key.replace('-', '_').isidentifier():
        bad('extra', key, "sbatch option names such as 'qos' or 'mail-type' (no leading --)")
      if key.replace('_', '-') in RESERVED:
        bad('extra', key, f'any sbatch option but {", ".join(RESERVED)} (submitit sets those)')
      if not (isinstance(value, (str, int, float)) and value is not False):
        bad(f'extra.{key}', value, 'a string or a number (True: a flag without a value)')
    # Whole numbers given as floats (a suite file's 1.0) are stored as ints.
    object.__setattr__(self, 'cpus_per_cell', _whole(self.cpus_per_cell))
    object.__setattr__(self, 'gpus_per_cell', _whole(self.gpus_per_cell))
    object.__setattr__(self, 'time', float(self.time))
    object.__setattr__(self, 'extra', dict(self.extra))

  @classmethod
  def from_settings(cls, settings: Mapping[str, Any] | None) -> SlurmOptions:
    """From the suite config's `slurm` section (a ConfigDict) or a plan's dict; unknown keys
    are refused."""
    if settings is not None and hasattr(settings, 'to_dict'):
      settings = settings.to_dict()
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
      raise UsageError(f'slurm.{unknown[0]} is not a slurm setting; valid: {", ".join(SETTINGS)}')
    if settings.get('extra') is None:
      settings.pop('extra', None)
    return cls(**settings)

  def to_dict(self) -> dict[str, Any]:
    """JSON-ready: what a run's plan (run.json) keeps, so that --resume submits the same."""
    return dataclasses.asdict(self)

  @property
  def signal_delay_s(self) -> int:
    """How long before its time limit a job is told to requeue: submitit's 90 s, or a
    quarter of a shorter limit."""
    return max(1, min(90, int(self.time * 60 / 4)))

  def execution(self, execution: Execution) -> Execution:
    """The cells' Execution under these jobs: a time-based checkpoint at least every
    quarter of the time limit, so that a job that times out loses at most that much
    (unless time-based checkpoints are off: checkpoint_every_s=None)."""
    every_s = execution.checkpoint_every_s
    if every_s is None or every_s <= self.time * 60 / 4:
      return execution
    return dataclasses.replace(execution, checkpoint_every_s=self.time * 60 / 4)


def require_submitit() -> None:
  """Refuse the slurm executor in one line, before any cell runs, without submitit."""
  if importlib.util.find_spec('submitit') is None:
    raise UsageError(f'executor slurm needs submitit, which is not installed: {INSTALL_SLURM} '
                     "(from a checkout: pip install -e '.[slurm]')")


def require(options: SlurmOptions) -> None:
  """Refuse, before any cell runs, a slurm run that cannot start here."""
  require_submitit()
  if not options.local:
    missing = [c for c in ('sbatch', 'srun') if shutil.which(c) is None]
    if missing:
      raise UsageError(f'executor slurm: no Slurm here ({" and ".join(missing)} not found); '
                       'run where Slurm is, or try the path on this machine with '
                       '--config.slurm.local=True')


# ---------------------------------------------------------------------------------------
# The job.

@dataclasses.dataclass
class CellJob:
  """One cell as a submitit job: the driver's plug-ins first, then the cell; its record
  says which job ran it. checkpoint() is submitit's hook on preemption or time-out.
  `checkpoint_dir`: where the cell checkpoints, so that the job's log says where each of
  its starts (a requeued job's too) takes the cell up."""
  run: Callable[..., dict[str, Any]]
  plugin_sources: list[str]
  cell: Cell
  checkpoint_dir: pathlib.Path | None = None

  def __call__(self) -> dict[str, Any]:
    import submitit
    job_id = submitit.JobEnvironment().job_id
    steps = sorted(int(p.name) for p in (self.checkpoint_dir.glob('*') if self.checkpoint_dir
                                         else ()) if p.name.isdigit())
    print(f'archbench: job {job_id} runs {self.cell.name} (cell {self.cell.digest}), '
          + (f'from its checkpoint at step {steps[-1]}' if steps else 'from step 0'),
          file=sys.stderr, flush=True)
    plugins.load_all(self.plugin_sources)
    record = self.run(self.cell)
    record.setdefault('ran_on', {})['job_id'] = job_id
    # submitit gives up on a job that timed out once too often by raising, from its signal
    # handler, in the middle of training: run_cell records that as an error. It is the
    # cell's time running out, and the record says so.
    if str(record.get('error')).startswith(TIMED_OUT):
      record.update(status='timeout', error=(
          f'slurm job {job_id} reached its time limit {MAX_TIMEOUTS + 1} times (requeued '
          'from its checkpoint after each but the last); give it more: --config.slurm.time'))
    return record

  def checkpoint(self, *args, **kwargs):
    """Requeue the same call: the cell continues from its own last checkpoint under
    OUT/checkpoints/<cell_id>/ (nothing of the interrupted process is kept)."""
    from submitit.helpers import DelayedSubmission
    return DelayedSubmission(self, *args, **kwargs)


class JobFailed(Exception):
  """A job that ended without a record."""


# ---------------------------------------------------------------------------------------
# The driver's side.

def mem_text(mem_gb: float) -> str:
  """sbatch's --mem: whole gigabytes as NGB, else megabytes (as submitit writes it)."""
  return f'{int(mem_gb)}GB' if float(mem_gb).is_integer() else f'{math.ceil(mem_gb * 1024)}MB'


def make_executor(options: SlurmOptions, folder: pathlib.Path,
                  environment: Mapping[str, str] | None = None):
  """submitit's executor for these options. On Slurm, `environment` is exported at the top
  of each job's script, whatever the cluster's --export policy; a local job inherits this
  process's environment."""
  import submitit
  if options.local:
    executor = submitit.LocalExecutor(folder, max_num_timeout=MAX_TIMEOUTS)
    executor.update_parameters(timeout_min=options.time, gpus_per_node=options.gpus_per_cell,
                               signal_delay_s=options.signal_delay_s)
    return executor
  try:
    executor = submitit.SlurmExecutor(folder, max_num_timeout=MAX_TIMEOUTS)
  except RuntimeError as e:  # no srun
    raise UsageError(f'executor slurm: {e}') from None
  parameters = dict(job_name='archbench', time=math.ceil(options.time),
                    cpus_per_task=options.cpus_per_cell, signal_delay_s=options.signal_delay_s,
                    setup=[f'export {k}={shlex.quote(v)}'
                           for k, v in sorted((environment or {}).items())])
  if options.partition:
    parameters['partition'] = options.partition
  if options.gpus_per_cell:
    parameters['gpus_per_node'] = options.gpus_per_cell
  if options.mem_gb is not None:
    parameters['mem'] = mem_text(options.mem_gb)
  if options.extra:
    parameters['additional_parameters'] = dict(options.extra)
  executor.update_parameters(**parameters)
  return executor


@dataclasses.dataclass
class _Running:
  index: int
  cell: Cell
  job: Any
  slot: int | None = None  # local: which of the `workers` slots (and its GPUs) it holds


class _Ledger:
  """OUT/slurm/jobs.json: cell_id -> {job_id, folder, local, slot}, rewritten whole (and
  atomically) after each submission."""

  def __init__(self, path: pathlib.Path):
    self.path = path
    try:
      self.entries = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
      self.entries = {}

  def note(self, running: list[_Running], folder: pathlib.Path, local: bool) -> None:
    for r in running:
      self.entries[r.cell.digest] = {'job_id': r.job.job_id, 'folder': str(folder),
                                     'local': local, 'slot': r.slot}
    self.path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomically(self.path, json.dumps(self.entries, indent=1))


def _controller_alive(pid: int) -> bool:
  """A local job's controller (submitit.local._local) is still running as `pid`: not gone,
  not a zombie, and not another program that got its pid since."""
  proc = pathlib.Path('/proc') / str(pid)
  if proc.is_dir():
    try:
      state = (proc / 'stat').read_text().rpartition(')')[2].split()[0]
      return state != 'Z' and b'submitit.local._local' in (proc / 'cmdline').read_bytes()
    except (OSError, IndexError):
      return False
  try:
    os.kill(pid, 0)
  except OSError:
    return False
  return True


def _queued(job_ids) -> set[str] | None:
  """The jobs among `job_ids` that Slurm still has queued or running, from squeue (which,
  unlike sacct, needs no accounting database); None if squeue cannot say."""
  try:
    listing = subprocess.run(['squeue', '--noheader', '--array', '--me', '--format=%i|%T'],
                             capture_output=True, text=True, timeout=120, check=True).stdout
  except (OSError, subprocess.SubprocessError):
    return None
  states = dict(line.split('|', 1) for line in listing.split() if '|' in line)
  return {j for j in job_ids if states.get(j, '').upper() in UNFINISHED}


class _Gone:
  """Slurm jobs that left the queue without a result: submitit learns of them from sacct,
  which not every cluster keeps (accounting); squeue, asked every `every_s`, tells too. A
  job missing from two answers in a row has ended."""

  def __init__(self, every_s: float):
    self.every_s, self.last, self.missing = every_s, time.monotonic(), set()

  def __call__(self, jobs) -> set[str]:
    if time.monotonic() - self.last < self.every_s:
      return set()
    self.last = time.monotonic()
    ids = {job.job_id for job in jobs if not job.paths.result_pickle.exists()}
    queued = _queued(ids)
    if queued is None:
      return set()
    gone, self.missing = self.missing & (ids - queued), ids - queued
    return gone


def _finished(job, local: bool, gone: set[str] = frozenset()) -> bool:
  if job.paths.result_pickle.exists():
    return True
  if local:
    process = getattr(job, '_process', None)
    return process.poll() is not None if process is not None else \
        not _controller_alive(int(job.job_id))
  return job.job_id in gone or job.done()


def _cancel(job, local: bool) -> None:
  if not local:
    job.cancel(check=False)
  elif getattr(job, '_process', None) is not None:
    job.cancel()
  elif _controller_alive(int(job.job_id)):  # a controller a killed driver left behind
    os.kill(int(job.job_id), signal.SIGINT)


def _reattach(entries: dict[str, Any], todo, options: SlurmOptions) -> dict[str, _Running]:
  """The jobs of jobs.json that still run (or finished unrecorded) a cell of `todo`;
  jobs of its cells that have ended without a result are cancelled for good measure (the
  cell is submitted again and must not race an old job for its checkpoint)."""
  import submitit
  job_class = submitit.LocalJob if options.local else submitit.SlurmJob
  candidates = {}
  for i, cell in todo:
    entry = entries.get(cell.digest)
    if entry and entry.get('local') == options.local:
      candidates[cell.digest] = _Running(i, cell, job_class(entry['folder'], entry['job_id']),
                                         entry.get('slot'))
  queued = None
  if candidates and not options.local:
    queued = _queued({r.job.job_id for r in candidates.values()})
    if queued is None:  # no squeue answer: sacct's, for all of them in one call
      submitit.SlurmJob.watcher.update()
  attached = {}
  for digest, r in candidates.items():
    if r.job.paths.result_pickle.exists():
      alive = True
    elif options.local:
      alive = _controller_alive(int(r.job.job_id))
    elif queued is not None:
      alive = r.job.job_id in queued
    else:
      alive = r.job.watcher.get_state(r.job.job_id, mode='cache').upper() in UNFINISHED
    if alive:
      attached[digest] = r
    else:
      _cancel(r.job, options.local)
  return attached


def _failure(r: _Running, local: bool) -> JobFailed:
  """Why a job returned no record, in one line, with where its log is."""
  paths = r.job.paths
  why = None
  if paths.result_pickle.exists():  # the call itself raised (e.g. a plug-in would not load)
    try:
      with paths.result_pickle.open('rb') as f:
        outcome, trace = pickle.load(f)
      lines = [line for line in str(trace).splitlines() if line.strip()]
      why = f'it raised {lines[-1].strip()}' if outcome == 'error' and lines else None
    except Exception:  # an unreadable result is reported as such
      why = 'its result could not be read'
  if why is None:
    # Slurm's state says how it ended (OUT_OF_MEMORY, NODE_FAIL, ...); locally the exit code
    # is its controller's, not the job's.
    state = '' if local else f' ({r.job.state})'.replace(' (UNKNOWN)', ' (left the queue)')
    tail = ''
    if paths.stderr.is_file():  # the last line the job wrote itself, if any
      lines = [line.strip() for line in paths.stderr.read_text(errors='replace').splitlines()
               if line.strip() and not line.startswith(OWN_LOG_LINES)]
      tail = f': {lines[-1]}' if lines else ''
    why = f'it ended{state} without a result{tail}'
  text = f'{"local" if local else "slurm"} job {r.job.job_id} of {r.cell.name}: {why}'
  return JobFailed(f'{" ".join(text.split())[:300]}; its log: {paths.stderr}')


def _outcome(r: _Running, local: bool, gone: set[str] = frozenset()):
  if not r.job.paths.result_pickle.exists() and (local or r.job.job_id in gone):
    return _failure(r, local)  # it is gone (submitit would wait on sacct, or for 15 s)
  try:
    outcome = r.job.result()
  except Exception:  # a job's failure is its cell's record, never the run's
    return _failure(r, local)
  return outcome if isinstance(outcome, dict) else _failure(r, local)


def run_jobs(todo: list[tuple[int, Cell]], run: Callable[..., dict[str, Any]],
             options: SlurmOptions, *, out_dir: pathlib.Path, workers: int = 1,
             environment: Mapping[str, str] | None = None, gpus: list[str] | None = None,
             poll_s: float | None = None,
             queue_check_s: float = 60.0) -> Iterator[tuple[int, Cell, Any]]:
  """Yield (index, cell, record or exception) as each cell's job finishes. On Slurm every
  cell is submitted at once (one job array); locally, `workers` jobs run at a time, each
  with gpus_per_cell of `gpus` of its own. Stopped early (interrupted), the jobs still
  running are cancelled; a driver killed outright leaves them running, for --resume."""
  require(options)
  folder = (pathlib.Path(options.folder) if options.folder else out_dir / 'slurm').resolve()
  ledger = _Ledger(out_dir.resolve() / 'slurm' / JOBS_FILE)
  executor = make_executor(options, folder, environment)
  sources = plugins.loaded()
  checkpoints = out_dir.resolve() / 'checkpoints'  # as suite.run_suite's cells save them

  def cell_job(cell: Cell) -> CellJob:
    return CellJob(run, sources, cell, checkpoints / cell.digest)

  poll_s = poll_s if poll_s is not None else (0.5 if options.local else 5.0)
  window = max(1, workers) if options.local else None
  per_job = options.gpus_per_cell
  gpus = list(gpus or [])
  if options.local and per_job:
    if len(gpus) < window * per_job or not all(g.isdigit() for g in gpus):
      raise UsageError(f'slurm.local with gpus_per_cell={per_job} and {window} worker(s) needs '
                       f'{window * per_job} GPUs by index; this machine shows '
                       f'{len(gpus)} ({",".join(gpus) or "none"})')
  running = _reattach(ledger.entries, todo, options)
  if running:
    logging.info('slurm: re-attached to %d job(s) still queued, running or finished '
                 'unrecorded: %s', len(running), ', '.join(r.job.job_id for r in running.values()))
  waiting = [(i, cell) for i, cell in todo if cell.digest not in running]

  def submit() -> None:
    if not waiting:
      return
    if window is None:
      batch, waiting[:] = waiting[:], []
      try:
        with executor.batch():
          jobs = [executor.submit(cell_job(cell)) for _, cell in batch]
      except Exception as e:  # sbatch refused them (a bad partition, option, ...)
        raise UsageError(f'slurm: submitting {len(batch)} job(s) failed: {one_line(e, 500)}') \
            from None
      new = [_Running(i, cell, job) for (i, cell), job in zip(batch, jobs)]
    else:
      used = {r.slot for r in running.values()}
      new = []
      for slot in [s for s in range(window) if s not in used][:len(waiting)]:
        i, cell = waiting.pop(0)
        if per_job:
          executor.update_parameters(
              visible_gpus=tuple(int(g) for g in gpus[slot * per_job:(slot + 1) * per_job]))
        new.append(_Running(i, cell, executor.submit(cell_job(cell)), slot))
    if not new:
      return
    running.update((r.cell.digest, r) for r in new)
    ledger.note(new, folder, options.local)
    logging.info('slurm: submitted %d job(s) (%s); logs in %s', len(new),
                 ', '.join(r.job.job_id for r in new), folder)

  gone_from_queue = _Gone(queue_check_s)
  try:
    submit()
    while running:
      gone = set() if options.local else gone_from_queue(r.job for r in running.values())
      done = [d for d, r in running.items() if _finished(r.job, options.local, gone)]
      for digest in done:
        r = running.pop(digest)
        yield r.index, r.cell, _outcome(r, options.local, gone)
      submit()
      if not done:
        time.sleep(poll_s)
  finally:  # stopped early (interrupted): no job runs on without its driver
    for r in running.values():
      try:
        _cancel(r.job, options.local)
      except Exception:  # cancelling is best effort
        pass
