"""Data parallelism within a cell, on one host or many: a 1-D device mesh ('data'), the
batch split along its first axis, parameters and optimiser state replicated.

This is the `jax.jit` sharding API (Mesh + NamedSharding): the step functions in
train.py stay single-device code, a sharding constraint on the batch tells XLA how to
split it, and XLA inserts the gradient all-reduce. The global batch is the cell's
`train.batch_size` whatever the device count, so 1 and N devices run the same
experiment (equal up to float summation order; tests/test_parallel.py).

Several hosts: `initialize_distributed()` joins them (jax.distributed) before any device
is used; `jax.devices()` then lists every host's devices, each process runs the same
cells in the same order, and only process 0 writes records (suite.run_suite).
"""
from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from archbench.benchmarks.core import UsageError

AXIS = 'data'
# A multi-host launch names the coordinator and this process's place among the others
# (the variables of jax.distributed; ARCHBENCH_DISTRIBUTED=1 lets JAX detect them from
# SLURM, Open MPI, Kubernetes or a Cloud TPU slice instead).
COORDINATOR_ENV, NUM_PROCESSES_ENV, PROCESS_ID_ENV = (
    'JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID')
AUTO_DETECT_ENV = 'ARCHBENCH_DISTRIBUTED'


def initialize_distributed() -> bool:
  """Join a multi-host run when the environment says there is one; True if joined.

  Must run before anything touches a device. On one machine without those variables it
  does nothing, so single-host runs never wait for a coordinator.
  """
  explicit = os.environ.get(COORDINATOR_ENV)
  if not explicit and os.environ.get(AUTO_DETECT_ENV) != '1':
    return False
  kwargs = {}
  if explicit:
    missing = [v for v in (NUM_PROCESSES_ENV, PROCESS_ID_ENV) if not os.environ.get(v)]
    if missing:
      raise UsageError(f'{COORDINATOR_ENV} is set, so this is a multi-host run, but '
                       f'{" and ".join(missing)} not: set all three on every host')
    kwargs = dict(coordinator_address=explicit,
                  num_processes=int(os.environ[NUM_PROCESSES_ENV]),
                  process_id=int(os.environ[PROCESS_ID_ENV]))
  jax.distributed.initialize(**kwargs)
  return True


def is_writer() -> bool:
  """Whether this process writes results: process 0 of a multi-host run, or the only one."""
  return jax.process_index() == 0


@dataclasses.dataclass(frozen=True)
class DataParallel:
  """How one cell's work is placed: `mesh` is None on a single device, where nothing is
  placed and the code runs exactly as without this class."""
  mesh: Mesh | None

  @classmethod
  def over(cls, devices: int, batch_sizes: tuple[int, ...] = ()) -> DataParallel:
    """A mesh of the first `devices` devices (0: all, every host's), checked against the
    batch sizes it has to split."""
    available = jax.devices()
    n = len(available) if devices == 0 else devices
    if n > len(available):
      raise UsageError(f'execution.devices={devices}, but this run has {len(available)} '
                       f'device(s) ({available[0].platform}); valid: 0 (all) to '
                       f'{len(available)}')
    check_split(n, batch_sizes)
    if n == 1 and jax.process_count() == 1:
      return cls(None)
    return cls(Mesh(np.array(available[:n]), (AXIS,)))

  @property
  def num_devices(self) -> int:
    return 1 if self.mesh is None else self.mesh.size

  def batch_sharding(self, batch_axis: int = 0) -> NamedSharding | None:
    """Split along `batch_axis` (1 for the evaluation's [batches, B, ...] arrays)."""
    if self.mesh is None:
      return None
    return NamedSharding(self.mesh, PartitionSpec(*([None] * batch_axis), AXIS))

  def replicate(self, tree):
    """Parameters and optimiser state: a full copy on every device of the mesh."""
    if self.mesh is None:
      return tree
    sharding = NamedSharding(self.mesh, PartitionSpec())
    return jax.tree_util.tree_map(lambda a: _global(np.asarray(a), sharding), tree)

  def constrain_batch(self, batch):
    """Inside a jitted function: split a batch drawn on device over the mesh. The random
    bits are partitionable (jax_threefry_partitionable), so each device draws its own
    share and the global batch equals the single-device one."""
    if self.mesh is None:
      return batch
    return jax.lax.with_sharding_constraint(batch, self.batch_sharding())

  def constrain_replicated(self, tree):
    if self.mesh is None:
      return tree
    return jax.lax.with_sharding_constraint(tree, NamedSharding(self.mesh, PartitionSpec()))

  def put_batches(self, tree, batch_axis: int = 1):
    """Host arrays (the held-out set, [batches, B, ...]) split along `batch_axis`."""
    if self.mesh is None:
      return tree
    sharding = self.batch_sharding(batch_axis)
    return jax.tree_util.tree_map(lambda a: _global(np.asarray(a), sharding), tree)

  def describe(self, batch_size: int) -> dict:
    """What a record says about the placement."""
    n = self.num_devices
    return {'devices': n, 'processes': jax.process_count(),
            'per_device_batch': batch_size // n,
            'sharding': 'single device' if self.mesh is None else
            f'data parallel: batch split over mesh axis {AXIS!r} of {n} devices, '
            'parameters replicated'}


def check_split(num_devices: int, batch_sizes: tuple[int, ...]) -> None:
  """Each device gets an equal share of every batch, or the cell does not start."""
  for b in batch_sizes:
    if b % num_devices:
      raise UsageError(f'a batch of {b} cannot be split evenly over {num_devices} devices: '
                       f'make train.batch_size a multiple of {num_devices}, or use fewer '
                       'devices')


def _global(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
  """A global array from a host array every process holds whole: each process places the
  shards of its own devices (device_put would need every device to be addressable)."""
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
