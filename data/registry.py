"""Name-keyed registry of tasks.

A task is registered as a factory `make(seed, **params) -> Task` with its default
parameters; suites override parameters (e.g. the length `T`) per cell.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

from data.spec import Task


@dataclasses.dataclass(frozen=True)
class TaskEntry:
  name: str
  description: str
  make: Callable[..., Task]  # make(seed, **params)

  @property
  def defaults(self) -> dict[str, Any]:
    sig = inspect.signature(self.make)
    return {k: p.default for k, p in sig.parameters.items() if k != 'seed'}

  def build(self, seed: int = 0, **params) -> Task:
    unknown = set(params) - set(self.defaults)
    if unknown:
      raise KeyError(f'task {self.name!r} has no parameter(s) {", ".join(sorted(unknown))}; '
                     f'valid: {", ".join(self.defaults)}')
    return self.make(seed=seed, **params)


_REGISTRY: dict[str, TaskEntry] = {}


def register(name: str, description: str):
  """Decorator for a task factory `make(seed, **params) -> Task`."""
  def wrap(make):
    if name in _REGISTRY:
      raise ValueError(f'task {name!r} registered twice')
    _REGISTRY[name] = TaskEntry(name, description, make)
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
