"""Claims: what people believe about CNNs, RNNs and Transformers, each one an experiment
and a decision rule (`archbench claims`; the judging is results/claims.py).

A claim is declarative: the claim as usually stated and where that wording comes from,
the experiment as a suite config fragment at sizes `cpu` and `full` (the tasks, the
architectures, the parameter budget, the training budget and the seeds), the statistic and
the decision rule with its threshold (results/claims.py's compare, trend or
beats_baseline), or the reason archbench cannot test it. Built-in claims live one file
per family of claims in this package; a user's claim registers from the user's own file:

    from archbench.benchmarks.claims import Claim, register
    from archbench.benchmarks.results import claims as rules

    register(Claim(name='my-claim', text='...', source='...', family='...',
                   experiment='...', statistic='...', threshold='...',
                   rule=rules.compare('eval/accuracy', 'cnn', ['vit'],
                                      [rules.condition('digits', task='digits')]),
                   plans=lambda size: {'tasks': {'digits': {...}}, ...}))

and runs with `archbench claims --plugin FILE` (`--list` shows it).

`plans(size)` returns suite_config's keyword arguments (tasks as task_plan dicts, size,
seeds, train, archs); the claim's cells are that suite's cells. Cells shared by two claims
(the same digest) run once. A claim whose experiment needs a task or architecture that is
not registered is listed as not testable, with the missing names: never a made-up verdict.
"""
from __future__ import annotations

import dataclasses
import importlib
import pathlib
from typing import Any, Callable

from archbench.benchmarks.core import UsageError
from archbench.benchmarks.results import claims as rules

SIZES = rules.SIZES
MIN_SEEDS = rules.MIN_SEEDS
SEEDS = (0, 1, 2)  # the built-in claims' seeds: the fewest an interval and a test need
# The built-in claims' files, in the order --list and claims.md show them.
BUILT_IN = ('images', 'recurrence', 'attention', 'sequences')


@dataclasses.dataclass(frozen=True)
class Claim:
  """One claim (module docstring). `rule`: results/claims.py's rule, or a function of the
  size returning it. `plans(size)`: suite_config keyword arguments, or None
  where `untestable` says why archbench cannot test it. `needs`: tasks and architectures
  the experiment needs (a missing one makes the claim not testable, saying which)."""
  name: str
  text: str
  source: str
  family: str
  experiment: str
  statistic: str
  threshold: str
  rule: dict | None = None
  plans: Callable[[str], dict[str, Any]] | None = None
  untestable: str | None = None
  needs: tuple[str, ...] = ()
  runtime: str = ''

  def __post_init__(self):
    if not self.name or not self.name.replace('-', '').replace('_', '').isalnum():
      raise ValueError(f'claim name {self.name!r}: letters, digits, - and _')
    if (self.rule is None or self.plans is None) and not self.untestable:
      raise ValueError(f'claim {self.name}: give rule and plans, or untestable (why not)')

  def rule_at(self, size: str) -> dict:
    """The decision rule at `size`: `rule` itself, or `rule(size)` where the conditions
    name a size's own settings (e.g. its step budget)."""
    return self.rule(size) if callable(self.rule) else self.rule

  def missing(self) -> list[str]:
    """What the experiment needs that is not registered (tasks or architectures)."""
    from archbench import archs, data
    known = set(data.names()) | set(archs.names())
    return [n for n in self.needs if n not in known]

  def why_untestable(self) -> str | None:
    if self.untestable:
      return self.untestable
    missing = self.missing()
    if missing:
      return (f'needs {", ".join(missing)}, not registered here (a task or architecture '
              'to add, or a plug-in to load)')
    return None

  def configs(self, size: str) -> list:
    """The claim's experiment at `size` as suite configs (one per dict `plans` returns:
    a claim across parameter budgets needs one per budget)."""
    from archbench.benchmarks import config as config_lib
    if size not in SIZES:
      raise UsageError(f'claims size {size!r}; valid: {", ".join(SIZES)}')
    found = self.plans(size)
    out = []
    for i, kwargs in enumerate([found] if isinstance(found, dict) else list(found)):
      kwargs = dict(kwargs)
      tasks = kwargs.pop('tasks')
      out.append(config_lib.suite_config(
          name=f'claim-{self.name}-{size}' + (f'-{i}' if i else ''), doc=self.experiment,
          size=kwargs.pop('size', 'small'), tasks=tasks, **kwargs))
    return out

  def cells(self, size: str) -> list:
    """The claim's cells at `size` (identical cells once)."""
    from archbench.benchmarks import config as config_lib
    out = {}
    for config in self.configs(size):
      for cell in config_lib.cells(config):
        out.setdefault(cell.digest, cell)
    return list(out.values())

  def spec(self, size: str, cells: list[str] = ()) -> dict[str, Any]:
    """The plain-data spec results/claims.py judges (cells: their digests)."""
    why = self.why_untestable()
    return rules.spec(name=self.name, text=self.text, source=self.source, family=self.family,
                      experiment=self.experiment, statistic=self.statistic,
                      rule=None if why else rules.plain(self.rule_at(size)),
                      threshold=self.threshold,
                      untestable=why, cells=list(cells), size=size, runtime=self.runtime)


def side_by_side(task: str, archs: tuple[str, ...], steps: tuple[int, int], *,
                 train: dict, params: dict | None = None, budget: str = 'small',
                 seeds: tuple[int, ...] = SEEDS) -> Callable[[str], dict[str, Any]]:
  """`plans` for the common experiment: `archs` side by side on one task at one parameter
  `budget`, `steps` = (at size cpu, at size full), the same training for every one."""
  def plans(size: str) -> dict[str, Any]:
    from archbench.benchmarks.config import task_plan
    return {'size': budget, 'seeds': seeds, 'train': train, 'tasks': {task: task_plan(
        params or {}, {'steps': steps[0] if size == 'cpu' else steps[1]}, archs=archs)}}
  return plans


_CLAIMS: dict[str, Claim] = {}
_built_in_loaded = False


def register(claim: Claim) -> Claim:
  """Add a claim (a plug-in's too); a name registered again is replaced in place."""
  _CLAIMS[claim.name] = claim
  return claim


def _load_built_ins() -> None:
  global _built_in_loaded
  if not _built_in_loaded:
    _built_in_loaded = True
    user = dict(_CLAIMS)  # a plug-in loaded first still comes after the built-in claims
    _CLAIMS.clear()
    for name in BUILT_IN:
      importlib.import_module(f'{__name__}.{name}')
    _CLAIMS.update({k: v for k, v in user.items() if k not in _CLAIMS})


def all_claims() -> list[Claim]:
  _load_built_ins()
  return list(_CLAIMS.values())


def names() -> list[str]:
  return [c.name for c in all_claims()]


def get(name: str) -> Claim:
  _load_built_ins()
  if name not in _CLAIMS:
    raise UsageError(f'unknown claim {name!r}; valid: {", ".join(_CLAIMS)} (archbench claims '
                     '--list)')
  return _CLAIMS[name]


def files() -> list[pathlib.Path]:
  """The built-in claims' files."""
  here = pathlib.Path(__file__).resolve().parent
  return [here / f'{name}.py' for name in BUILT_IN]
