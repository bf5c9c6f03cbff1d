"""Name-keyed registry of tasks.

A task is registered as a factory `make(seed, **params) -> Task` with its default
parameters; suites override parameters (e.g. the length `T`) per cell.

A task whose data must be read from disk (TFDS datasets) also registers `spec(**params) ->
TaskSpec`, its shape without its data, so that `archbench list` and the planning of a run
neither read nor need the data; baselines computed from the data are then left empty.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Callable

from archbench.data.spec import Task, TaskSpec


@dataclasses.dataclass(frozen=True)
class TaskEntry:
  name: str
  description: str
  make: Callable[..., Task]  # make(seed, **params)
  # spec(**params) -> TaskSpec without the data; None: the spec of make(seed=0, **params).
  make_spec: Callable[..., TaskSpec] | None = None

  @property
  def defaults(self) -> dict[str, Any]:
    sig = inspect.signature(self.make)
    return {k: p.default for k, p in sig.parameters.items() if k != 'seed'}

  @property
  def reads_data(self) -> bool:
    """True for tasks read from disk (their spec leaves data-derived baselines empty)."""
    return self.make_spec is not None

  def _check(self, params) -> None:
    unknown = set(params) - set(self.defaults)
    if unknown:
      raise KeyError(f'task {self.name!r} has no parameter(s) {", ".join(sorted(unknown))}; '
                     f'valid: {", ".join(self.defaults)}')
    # No task parameter (sizes, lengths, counts, seeds, fractions, noise) is negative; a
    # task with tighter bounds checks them itself.
    for key, value in params.items():
      if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise ValueError(f'task {self.name!r}: {key} must be >= 0, got {value}')

  def build(self, seed: int = 0, **params) -> Task:
    self._check(params)
    return self.make(seed=seed, **params)

  def spec(self, **params) -> TaskSpec:
    """The task's spec, without reading data where the task reads it from disk.

    Remembered per parameters: for a synthetic task it is the spec of a whole built task
    (its held-out set included), and planning a suite asks for it once per cell."""
    try:
      return _remembered_spec(self, tuple(sorted(params.items())))
    except TypeError:  # an unhashable parameter value: not remembered
      return self._spec(**params)

  def _spec(self, **params) -> TaskSpec:
    self._check(params)
    try:
      if self.make_spec is None:
        return self.make(seed=0, **params).spec
      return self.make_spec(**params)
    except (KeyError, ValueError):
      raise
    except Exception as e:  # e.g. a shape XLA refuses: say which parameters made it
      raise ValueError(f'task {self.name!r} cannot be built with {params}: '
                       f'{type(e).__name__}: {" ".join(str(e).split())[:200]}') from None


_REGISTRY: dict[str, TaskEntry] = {}


def register(name: str, description: str, spec: Callable[..., TaskSpec] | None = None):
  """Decorator for a task factory `make(seed, **params) -> Task`; `spec(**params)`, for
  tasks that read data, gives the spec without reading it (same parameters as make)."""
  def wrap(make):
    if name in _REGISTRY:
      raise ValueError(f'task {name!r} registered twice')
    _REGISTRY[name] = TaskEntry(name, description, make, spec)
    return make
  return wrap


def get(name: str) -> TaskEntry:
  if name not in _REGISTRY:
    raise KeyError(f'unknown task {name!r}; valid: {", ".join(names())}')
  return _REGISTRY[name]


def names() -> list[str]:
  return list(_REGISTRY)


def build(name: str, seed: int = 0, **params) -> Task:
  return get(name).build(seed, **params)


@functools.lru_cache(maxsize=1024)
def _remembered_spec(entry: TaskEntry, params: tuple) -> TaskSpec:
  return entry._spec(**dict(params))


def at_length(params: dict[str, Any], length: int) -> dict[str, Any]:
  """A task's parameters with every sequence at `length` exactly: how length generalisation
  (Cell.eval_lengths) builds its held-out set per length. A task's length parameter is
  `length`; a task that draws lengths in a range [min_length, length] (the Chomsky
  family) gets both set, and `pad_to` is unset."""
  if 'length' not in params:
    raise KeyError(f'a task without a `length` parameter cannot be evaluated at other '
                   f'lengths; its parameters: {", ".join(params) or "none"}')
  return {**params, 'length': int(length),
          **({'min_length': int(length)} if 'min_length' in params else {}),
          # A held-out set at one length is padded no further (the paper never pads).
          **({'pad_to': None} if 'pad_to' in params else {})}


def spec_of(name: str, **params) -> TaskSpec:
  """The spec of `name` with `params`, without reading its data (see TaskEntry.spec)."""
  return get(name).spec(**params)
