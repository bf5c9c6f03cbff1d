"""Executors: where the cells of a suite run.

  local      this process, one cell after another.
  processes  a pool of spawned processes on this machine, `workers` of them (default one
             per GPU). On a GPU machine each worker is pinned to one GPU
             (CUDA_VISIBLE_DEVICES) and, when several share one, takes its share of that
             GPU's memory, so that they do not race for it.
  ray        a Ray cluster: each cell is a task that requests its resources (a CPU, and a
             GPU when the cluster has them). `ray.address` joins a running cluster ('auto',
             'HOST:PORT' or 'ray://HOST:10001'); without it a local cluster starts for the
             run, listening on 127.0.0.1 only, and stops at its end.
  slurm      a Slurm cluster through submitit (slurm.py): each cell a job (one job array
             per submission), requeued from its checkpoint when preempted or timed out;
             `slurm.local` runs the jobs on this machine with submitit's LocalExecutor.

Every executor takes the cells still to run and one picklable function that runs a cell and
returns its record (it never raises), and yields (index, cell, outcome) in the order the
cells finish: outcome is the record, or the exception that ended the worker or task before
it returned one. The driver (suite.run_suite) alone writes the records. None of this is a
scheduler of ours: the pool is concurrent.futures', the clusters are Ray's and Slurm's.

Ray and submitit are optional extras (`pip install -e '.[ray]'`, `'.[slurm]'`), imported
only by the `ray` and `slurm` executors.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import enum
import importlib.util
import ipaddress
import math
import multiprocessing
import os
import pathlib
import subprocess
import warnings
from typing import Any, Callable, Iterator

import jax

from archbench.benchmarks import plugins
from archbench.benchmarks.core import Cell, UsageError
from archbench.benchmarks.harness import slurm as slurm_lib
from archbench.benchmarks.harness.slurm import SlurmOptions

# run(cell, on_step=None) -> record: module-level (a functools.partial of one), so that it
# pickles into worker processes and Ray tasks.
RunCell = Callable[..., dict[str, Any]]
Outcome = tuple[int, Cell, 'dict[str, Any] | Exception']

# JAX's allocator settings: on a GPU it reserves this fraction of the memory when its
# backend starts (0.75 unless the user sets another).
MEM_FRACTION, PREALLOCATE = 'XLA_PYTHON_CLIENT_MEM_FRACTION', 'XLA_PYTHON_CLIENT_PREALLOCATE'
JAX_DEFAULT_MEM_FRACTION = 0.75
# What Ray workers and Slurm jobs get from the driver's environment, so that a cluster's
# workers compile and cache like this process (local ones inherit it anyway): archbench's
# settings (compilation cache, data directories), JAX's, XLA's, TFDS's. A multi-host
# launch's identity belongs to the processes it launched, never to the cells dispatched.
FORWARDED_PREFIXES = ('ARCHBENCH_', 'JAX_', 'XLA_', 'TFDS_')
NOT_FORWARDED = ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID',
                 'ARCHBENCH_DISTRIBUTED')
# Ray's single-machine mode (named for the platforms where it is the default). Off, Ray
# takes the machine's outward address as the node's IP, even when given 127.0.0.1
# (services.resolve_ip_for_localhost), and its servers listen on every interface; on, the
# node's IP is 127.0.0.1 and they listen there alone. Ray reads it when it is imported.
RAY_SINGLE_MACHINE = ('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER', '0')
INSTALL_RAY = "pip install -e '.[ray]'"


class Executor(str, enum.Enum):
  LOCAL = 'local'
  PROCESSES = 'processes'
  RAY = 'ray'
  SLURM = 'slurm'

  @classmethod
  def resolve(cls, name: str, workers: int) -> Executor:
    """The executor a run uses: `name`, except that workers > 1 with 'local' means
    'processes' (what `workers` meant before executors were named)."""
    try:
      executor = cls(name)
    except ValueError:
      raise UsageError(f'executor {name!r} is not known; valid: '
                       f'{", ".join(e.value for e in cls)}') from None
    if executor is cls.RAY and importlib.util.find_spec('ray') is None:  # before any cell
      raise UsageError(f'executor ray needs Ray, which is not installed: {INSTALL_RAY}')
    if executor is cls.SLURM:
      slurm_lib.require_submitit()
    return cls.PROCESSES if executor is cls.LOCAL and workers > 1 else executor


@dataclasses.dataclass(frozen=True)
class RayOptions:
  """address: the cluster to join (None: start a local one for the run). Each cell's task
  requests cpus_per_cell CPUs and gpus_per_cell GPUs (None: 1 if the cluster has GPUs,
  else 0; a fraction below 1 shares a GPU, each cell taking that share of its memory)."""
  address: str | None = None
  cpus_per_cell: float = 1.0
  gpus_per_cell: float | None = None


def dispatch(executor: Executor, todo: list[tuple[int, Cell]], run: RunCell, *,
             workers: int = 1, started: Callable[[int, Cell], Any] | None = None,
             ray: RayOptions = RayOptions(), slurm: SlurmOptions | None = None,
             out_dir: pathlib.Path | None = None) -> Iterator[Outcome]:
  """Run the cells of `todo` ((index, cell) pairs) with `executor`, yielding (index, cell,
  outcome) as each finishes. `started(index, cell)`, called by the local executor as a
  cell starts, returns the on_step callback to train it with (progress per step).
  `out_dir`: the run's directory, where the slurm executor keeps its jobs' files."""
  if not todo:
    return
  if executor is Executor.LOCAL:
    for i, cell in todo:
      yield i, cell, run(cell, on_step=started(i, cell) if started else None)
  elif executor is Executor.PROCESSES:
    yield from _processes(todo, run, workers)
  elif executor is Executor.RAY:
    yield from _ray(todo, run, workers, ray)
  else:
    if out_dir is None:
      raise ValueError('the slurm executor needs the run directory (out_dir)')
    slurm = slurm or SlurmOptions()
    yield from slurm_lib.run_jobs(todo, run, slurm, out_dir=out_dir, workers=workers,
                                  environment=forwarded_environment(),
                                  gpus=visible_gpus() if slurm.local else [])


def forwarded_environment() -> dict[str, str]:
  """The driver's variables that Ray tasks and Slurm jobs get (FORWARDED_PREFIXES)."""
  return {k: v for k, v in os.environ.items()
          if k.startswith(FORWARDED_PREFIXES) and k not in NOT_FORWARDED}


def start_driver_backend(executor: Executor) -> None:
  """Start JAX in the driver, which lists the devices (provenance.environment()) but runs no
  cell, without reserving the GPU memory that the workers' shares assume free. Call it
  before anything in the driver touches JAX; children started later get the environment as
  it was."""
  if executor is Executor.LOCAL or PREALLOCATE in os.environ:
    return
  os.environ[PREALLOCATE] = 'false'
  try:
    jax.devices()
  finally:
    del os.environ[PREALLOCATE]


# ---------------------------------------------------------------------------------------
# processes

def visible_gpus() -> list[str]:
  """The GPUs to pin workers to, by the ids CUDA_VISIBLE_DEVICES takes (JAX renumbers the
  visible ones from 0): those it lists when set, else `nvidia-smi -L`'s; none when
  JAX_PLATFORMS leaves CUDA out or there is no NVIDIA driver."""
  platforms = os.environ.get('JAX_PLATFORMS', '')
  if platforms and not {'cuda', 'gpu'} & set(platforms.split(',')):
    return []
  visible = os.environ.get('CUDA_VISIBLE_DEVICES')
  if visible is not None:
    ids = [d.strip() for d in visible.split(',') if d.strip()]
    return [] if ids[:1] == ['-1'] else ids
  try:
    listing = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True,
                             timeout=30).stdout
  except (OSError, subprocess.SubprocessError):
    return []
  return [str(i) for i, _ in enumerate(l for l in listing.splitlines() if l.startswith('GPU '))]


def _memory_share(share: float) -> dict[str, str]:
  """JAX's allocator settings for a process that gets `share` of a GPU: that share of what
  one process would reserve (the user's XLA_PYTHON_CLIENT_MEM_FRACTION, else JAX's 0.75),
  preallocation as the user set it (JAX's default: on)."""
  if share >= 1:
    return {}
  total = float(os.environ.get(MEM_FRACTION, JAX_DEFAULT_MEM_FRACTION))
  return {MEM_FRACTION: f'{total * share:.4g}', PREALLOCATE: os.environ.get(PREALLOCATE, 'true')}


def worker_environments(gpus: list[str], workers: int) -> list[dict[str, str]]:
  """Each worker's environment: on GPUs, worker k pinned to GPU k mod n, with its share of
  the memory when several share one; on CPU nothing (XLA's CPU client needs no split)."""
  if not gpus:
    return [{} for _ in range(workers)]
  sharing = math.ceil(workers / len(gpus))  # workers on the busiest GPU
  return [{'CUDA_VISIBLE_DEVICES': gpus[k % len(gpus)], **_memory_share(1 / sharing)}
          for k in range(workers)]


def _start_worker(environments, plugin_sources: list[str]) -> None:
  """A pool worker's initializer: take one environment (pinning it to its GPU before JAX
  starts its backend), then load the driver's plug-ins."""
  os.environ.update(environments.get())
  plugins.load_all(plugin_sources)


def _processes(todo, run: RunCell, workers: int) -> Iterator[Outcome]:
  gpus = visible_gpus()
  size = workers if workers > 1 else max(1, len(gpus))
  # Spawned, not forked: a forked JAX runtime is not safe to use.
  context = multiprocessing.get_context('spawn')
  environments = context.Queue()
  for environment in worker_environments(gpus, size):  # the pool starts at most `size`
    environments.put(environment)
  pool = concurrent.futures.ProcessPoolExecutor(
      size, mp_context=context, initializer=_start_worker,
      initargs=(environments, plugins.loaded()))
  try:
    futures = {pool.submit(run, cell): (i, cell) for i, cell in todo}
    for future in concurrent.futures.as_completed(futures):
      i, cell = futures[future]
      try:
        outcome = future.result()
      except Exception as error:  # the worker itself died (e.g. killed for memory)
        outcome = error
      yield i, cell, outcome
  finally:  # stopped early (interrupted): cells not started never will be
    pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------
# ray

def _import_ray(start_local: bool):
  if start_local:
    os.environ.setdefault(*RAY_SINGLE_MACHINE)
  try:
    import ray
  except ImportError:
    raise UsageError(f'executor ray needs Ray, which is not installed: {INSTALL_RAY}') from None
  return ray


def _in_ray_task(run: RunCell, plugin_sources: list[str], cell: Cell) -> dict[str, Any]:
  """A cell as a Ray task: the driver's plug-ins first (a no-op in a reused worker)."""
  plugins.load_all(plugin_sources)
  return run(cell)


def _start_local_cluster(ray, workers: int) -> None:
  """A cluster of this machine alone, for this run: `workers` CPUs (cells at once), the
  GPUs Ray finds. Everything it starts listens on 127.0.0.1 only: the GCS, the raylet,
  the object manager, each worker's RPC port, and the dashboard when Ray's dashboard
  extra is installed. Reachable from this machine alone, not from the network."""
  if not ipaddress.ip_address(ray.util.get_node_ip_address()).is_loopback:
    raise UsageError(
        'Ray was imported before archbench could keep its local cluster on 127.0.0.1 (it '
        f'would listen on every interface): set {"=".join(RAY_SINGLE_MACHINE)} before '
        'importing ray, or start a cluster yourself and pass --config.ray.address')
  with warnings.catch_warnings():
    # Ray starts its servers with subprocess (fork, then exec at once), which JAX's warning
    # about forking a multithreaded process cannot tell from a bare fork.
    warnings.filterwarnings('ignore', 'os.fork', RuntimeWarning)
    ray.init(address='local', num_cpus=max(1, workers), _node_ip_address='127.0.0.1',
             dashboard_host='127.0.0.1')


def _ray(todo, run: RunCell, workers: int, options: RayOptions) -> Iterator[Outcome]:
  ray = _import_ray(start_local=options.address is None)
  connected_here = not ray.is_initialized()  # else the caller's connection: leave it be
  if connected_here and options.address is None:
    _start_local_cluster(ray, workers)
  elif connected_here:
    try:
      ray.init(address=options.address)
    except (ConnectionError, ValueError, RuntimeError) as e:
      raise UsageError(f'ray.address {options.address!r}: cannot join the cluster: '
                       f'{" ".join(str(e).split())[:300]}') from None
  pending = {}
  try:
    total = ray.cluster_resources()
    gpus = options.gpus_per_cell
    gpus = (1.0 if total.get('GPU', 0) >= 1 else 0.0) if gpus is None else gpus
    for name, asked in (('CPU', options.cpus_per_cell), ('GPU', gpus)):
      if asked > total.get(name, 0) and options.address is None:  # it would wait forever
        raise UsageError(f'each cell asks for {asked:g} {name}s (ray.num_{name.lower()}s_per_'
                         f'cell) but the local Ray cluster has {total.get(name, 0):g}')
    env_vars = forwarded_environment()
    env_vars.update(_memory_share(gpus) if gpus > 0 else {})
    # Ray pins a task to its GPUs itself (CUDA_VISIBLE_DEVICES), and, given num_gpus here,
    # runs each GPU task in a fresh worker. No retries: a cell that killed its worker (out
    # of memory, a crash in XLA) would most likely do it again; its record says what
    # happened, and `archbench run --from_record` runs it again.
    task = ray.remote(num_cpus=options.cpus_per_cell, num_gpus=gpus, max_retries=0,
                      runtime_env={'env_vars': env_vars})(_in_ray_task)
    sources = plugins.loaded()
    pending = {task.remote(run, sources, cell): (i, cell) for i, cell in todo}
    while pending:
      ready, _ = ray.wait(list(pending), num_returns=1)
      for ref in ready:
        i, cell = pending.pop(ref)
        try:
          outcome = ray.get(ref)
        except Exception as error:  # the task or its worker died
          outcome = error
        yield i, cell, outcome
  finally:
    for ref in pending:  # stopped early (interrupted): no cell runs on without its driver
      ray.cancel(ref, force=True)
    if connected_here:
      ray.shutdown()  # stops the local cluster we started; leaves a joined one running
