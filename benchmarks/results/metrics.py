"""What a metric key means, in one place: how keys are built, which direction is better,
whether a metric is bounded in [0, 1], and how it is labelled and printed. The report, the
comparison of runs and the reproductions all derive from it.

Keys are namespaced: train/… and eval/… measured (eval/ on the test set, evaluated once
after training), val/… the same metrics on the validation set (what any selection
reads), baseline/<key> the task's constant
predictor's value of <key>, baseline/<name>/<metric> another trivial baseline of
eval/<metric> (baseline/chance/accuracy, a uniform guess; baseline/root_operator/accuracy,
ListOps' lookup by root operator; baseline/floor/<metric> is not one: FLOOR), lrd/… the long-range probes, length/<L>/<name> the metric
<name> (eval/<name>) on a held-out set of length L, ood/<name> its mean over the lengths
beyond training, samples/… what a generative model drew (samples/images: a few images as
lists of pixel rows, for the report's picture; not a number). Perf keys live in the
record's own `perf` section.

Direction: a record's `task_spec` names its task's headline metric and says whether higher
is better; that comes first. Every other metric is looked up in METRICS by the end of its
name (eval/token_accuracy is an accuracy); a name METRICS does not know counts as higher is
better and unbounded.

Levels: a value is placed `at chance`, `partial` or `solved` against its task's trivial
baselines and solved threshold (`level`), the one rule the reproductions and the reports
use. `at chance` means no better than the strongest trivial baseline by more than the
smallest change worth a verdict: CHANCE_MARGIN_ABS (0.02) for bounded metrics, a factor
RATIO_BAND (1.25) for unbounded ones (losses, MSE, bits/char), which span decades.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class Metric:
  """label: shown in table headers; bounded: in [0, 1], so compared in absolute points and
  printed to three decimals (unbounded ones span decades: three significant digits)."""
  label: str
  higher_is_better: bool
  bounded: bool


METRICS = {
    'accuracy': Metric('accuracy', higher_is_better=True, bounded=True),
    'exact_match': Metric('exact match', higher_is_better=True, bounded=True),
    'mse': Metric('MSE', higher_is_better=False, bounded=False),
    'mae': Metric('MAE', higher_is_better=False, bounded=False),
    'loss': Metric('loss', higher_is_better=False, bounded=False),
    'bits_per_char': Metric('bits/char', higher_is_better=False, bounded=False),
    'bits_per_dim': Metric('bits/dim', higher_is_better=False, bounded=False),
    # Image generation's checks of its samples (data/pixels.py): the share that lies as
    # near the training images as held-out images do, and the share that copies one.
    'sample_plausible': Metric('plausible samples', higher_is_better=True, bounded=True),
    'sample_copied': Metric('copied samples', higher_is_better=False, bounded=True),
}


# The smallest change worth a verdict: absolute for bounded metrics (two points, 20 of the
# usual 1000 held-out examples), a ratio for unbounded ones, compared as |ln(a / b)| <=
# ln(RATIO_BAND): 0.00087 against 0.0010 is a change of 15%, not of 0.00013.
CHANCE_MARGIN_ABS = 0.02
RATIO_BAND = 1.25
AT_CHANCE, PARTIAL, SOLVED = 'at chance', 'partial', 'solved'
# baseline/floor/<metric>: the best value any model can reach (the lm task's entropy rate),
# a ceiling on the score rather than a trivial predictor to beat.
FLOOR = 'floor'


# ---------------------------------------------------------------------------------------
# Building and reading keys.

def eval_key(name: str) -> str:
  return f'eval/{name}'


def validation_key(key: str) -> str:
  """The validation set's counterpart of a test metric key: eval/accuracy -> val/accuracy."""
  return 'val/' + key.split('/', 1)[1] if key.startswith('eval/') else key


def baseline_key(key: str) -> str:
  """The task's constant predictor's value of `key` (e.g. baseline/eval/mse)."""
  return f'baseline/{key}'


def named_baseline_key(name: str, key: str) -> str:
  """The trivial baseline `name` of the eval/ metric `key` (root_operator, eval/accuracy:
  baseline/root_operator/accuracy); a task declares it as '<name>/<metric>'."""
  return f'baseline/{name}/{key.split("/", 1)[1]}'


def trivial_baselines(values: dict[str, Any], key: str) -> dict[str, float]:
  """name -> value of every trivial baseline of `key` in a record's metrics: 'constant'
  (baseline/<key>, the constant predictor) and each named one of an eval/ metric (not the
  FLOOR, which no trivial predictor reaches)."""
  out = {}
  if values.get(baseline_key(key)) is not None:
    out['constant'] = float(values[baseline_key(key)])
  if key.startswith('eval/'):
    suffix = '/' + key.split('/', 1)[1]
    for k, v in values.items():
      parts = k.split('/')
      if (len(parts) == 3 and parts[0] == 'baseline' and parts[1] not in ('eval', FLOOR)
          and k.endswith(suffix) and v is not None):
        out[parts[1]] = float(v)
  return out


def floor_value(values: dict[str, Any], key: str) -> float | None:
  """The best value any model can reach on `key` where the task states it (FLOOR)."""
  if not key.startswith('eval/'):
    return None
  value = values.get(named_baseline_key(FLOOR, key))
  return None if value is None else float(value)


def length_key(length: int, name: str) -> str:
  """eval/<name> on a held-out set whose sequences all have length `length`."""
  return f'length/{length}/{name}'


def ood_key(name: str) -> str:
  """The mean of length/<L>/<name> over the lengths L beyond training."""
  return f'ood/{name}'


def lrd_key(name: str) -> str:
  """A long-range probe's figure (lrd/length, lrd/grad_init, lrd/rate_trained, ...)."""
  return f'lrd/{name}'


def lengths_of(metrics: dict[str, Any]) -> dict[int, set[str]]:
  """L -> the metric names recorded at evaluation length L (length/<L>/<name> keys)."""
  out: dict[int, set] = {}
  for key in metrics:
    parts = key.split('/')
    if len(parts) == 3 and parts[0] == 'length' and parts[1].isdigit():
      out.setdefault(int(parts[1]), set()).add(parts[2])
  return out


def measured_key(key: str) -> str:
  """The eval/ metric a key measures: baseline/eval/mse, length/64/mse and ood/mse are all
  eval/mse's values."""
  parts = key.split('/')
  if parts[0] == 'baseline' and len(parts) > 1:
    return measured_key('/'.join(parts[1:]))
  if parts[0] == 'length' and len(parts) == 3:
    return eval_key(parts[2])
  if parts[0] == 'ood' and len(parts) == 2:
    return eval_key(parts[1])
  return key


# ---------------------------------------------------------------------------------------
# Semantics.

def _known(key: str) -> Metric | None:
  """The METRICS entry whose name ends the name of the metric `key` measures."""
  name = measured_key(key).rsplit('/', 1)[-1]
  return next((m for suffix, m in METRICS.items() if name.endswith(suffix)), None)


def higher_is_better(key: str, spec: dict | None = None) -> bool:
  """Whether a larger value of `key` is better: the task's spec when it names the metric
  `key` measures, else METRICS, else higher."""
  spec = spec or {}
  if spec.get('metric') == measured_key(key) and spec.get('higher_is_better') is not None:
    return bool(spec['higher_is_better'])
  known = _known(key)
  return known.higher_is_better if known else True


def is_bounded(key: str) -> bool:
  """Whether `key` lies in [0, 1] (accuracies, exact-match rates)."""
  known = _known(key)
  return bool(known and known.bounded)


def value_range(key: str) -> tuple[float, float]:
  """The values `key` can take: [0, 1] for bounded metrics, [0, inf) for the others METRICS
  knows (errors, losses, bits: none is negative), else unrestricted."""
  if is_bounded(key):
    return 0.0, 1.0
  return (0.0 if _known(key) else -math.inf), math.inf


def label(key: str) -> str | None:
  """The header name of an eval/ metric METRICS knows by its exact name (eval/mse: 'MSE'),
  else None: callers show the key itself."""
  namespace, _, name = key.partition('/')
  return METRICS[name].label if namespace == 'eval' and name in METRICS else None


def arrow(key: str, spec: dict | None = None) -> str:
  return '↑' if higher_is_better(key, spec) else '↓'


def value_format(key: str | None) -> str:
  """Bounded metrics to three decimals; the others to three significant digits, since they
  span decades (0.167 at the baseline, 1e-5 solved)."""
  return '{:.3f}' if key and is_bounded(key) else '{:.3g}'


def log_ratio(a: float, b: float) -> float | None:
  """ln(a / b), the distance between two values of an unbounded metric; None unless both
  are positive (a metric that can be zero or negative is compared in absolute terms)."""
  return math.log(a / b) if a > 0 and b > 0 else None


# Decimal numbers (a paper's 0.52 against chance 0.5) are not exact in binary: a gain
# equal to the margin on paper must not count as beyond it by a rounding error.
_ROUNDING = 1e-9


def beyond_margin(value: float, reference: float, key: str, higher: bool) -> bool:
  """Whether `value` beats `reference` by more than the smallest change worth a verdict."""
  if not is_bounded(key) and (ratio := log_ratio(value, reference)) is not None:
    gain = ratio if higher else -ratio
    return gain > math.log(RATIO_BAND) + _ROUNDING
  gain = (value - reference) if higher else (reference - value)
  return gain > (CHANCE_MARGIN_ABS if is_bounded(key) else
                 (RATIO_BAND - 1) * abs(reference)) + _ROUNDING


def strongest(baselines: dict[str, float], higher: bool) -> tuple[str, float] | None:
  """(name, value) of the best trivial baseline, the one a result must beat."""
  if not baselines:
    return None
  pick = max if higher else min
  return pick(baselines.items(), key=lambda item: item[1])


def level(value: float, baselines: dict[str, float], solved: float | None, key: str,
          higher: bool) -> str | None:
  """`solved` at or beyond the solved threshold; else `at chance` unless it beats the
  strongest trivial baseline beyond the margin (module docstring); else `partial`. None
  when no baseline is known (a level needs one)."""
  if solved is not None and (value >= solved if higher else value <= solved):
    return SOLVED
  best = strongest(baselines, higher)
  if best is None:
    return None
  return PARTIAL if beyond_margin(value, best[1], key, higher) else AT_CHANCE


def task_spec(record) -> dict[str, Any]:
  return (record.get('config') or {}).get('task_spec') or {}


def headline_metric(record) -> str | None:
  """The task's headline metric, as its spec named it (records of failed cells that never
  built their task fall back to what their metrics hold)."""
  named = task_spec(record).get('metric')
  if named:
    return named
  values = record.get('metrics', {})
  for key in ('eval/accuracy', 'eval/mse', 'eval/loss'):
    if baseline_key(key) in values or (key in values and key != 'eval/loss'):
      return key
  return 'eval/loss' if 'eval/loss' in values else None
