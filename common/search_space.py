"""Search spaces for tuning, as plain data: a suite (its `tuning.space`), an architecture
(`ArchSpec.search_space`) and a plug-in declare their dimensions the same way, and every
architecture is given the same points from the same seed (benchmarks/tuning.py).

A dimension is a dict:
  {'scale': 'log', 'low': 1e-4, 'high': 3e-2}    log-uniform between the bounds (low > 0)
  {'scale': 'linear', 'low': 0.0, 'high': 0.3}   uniform between the bounds
  {'scale': 'int', 'low': 0, 'high': 100}        whole numbers, both bounds included
  {'scale': 'choice', 'choices': ('a', 'b')}     one of these values

Points are drawn in the unit cube, quasi-randomly (`scipy.stats.qmc`'s scrambled Sobol' or
Halton sequence, seeded) or on a grid, then mapped onto each dimension's scale.
"""
from __future__ import annotations

import math
import warnings
import zlib
from typing import Any

import numpy as np

SCALES = ('log', 'linear', 'int', 'choice')
SAMPLERS = ('sobol', 'halton', 'grid')
_DIGITS = 4  # sampled floats keep 4 significant digits: readable, and the same everywhere


def check(name: str, dim: Any) -> dict[str, Any]:
  """`dim` as a plain dict, or ValueError (one line, naming `name`) when it is malformed."""
  dim = dict(dim or {})
  scale = dim.get('scale')
  if scale not in SCALES:
    raise ValueError(f'{name}.scale is {scale!r}; valid: {", ".join(SCALES)}')
  if scale == 'choice':
    choices = dim.get('choices')
    if isinstance(choices, (str, bytes)) or not choices:
      raise ValueError(f'{name}.choices must name at least one value, got {choices!r}')
    return {'scale': scale, 'choices': tuple(choices)}
  low, high = dim.get('low'), dim.get('high')
  for bound, value in (('low', low), ('high', high)):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
      raise ValueError(f'{name}.{bound} must be a number, got {value!r}')
  if low > high:
    raise ValueError(f'{name}: low {low} is above high {high}')
  if scale == 'log' and low <= 0:
    raise ValueError(f'{name}: a log scale needs low > 0, got {low}')
  if scale == 'int':
    if low != int(low) or high != int(high):
      raise ValueError(f'{name}: an int scale needs whole bounds, got {low} and {high}')
    low, high = int(low), int(high)
  return {'scale': scale, 'low': low, 'high': high}


def value(dim: dict[str, Any], u: float) -> Any:
  """The value at `u` in [0, 1] of a checked dimension, within its bounds."""
  u = min(max(float(u), 0.0), 1.0)
  if dim['scale'] == 'choice':
    return dim['choices'][min(int(u * len(dim['choices'])), len(dim['choices']) - 1)]
  low, high = dim['low'], dim['high']
  if dim['scale'] == 'int':
    return low + min(int(u * (high - low + 1)), high - low)
  x = (math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
       if dim['scale'] == 'log' else low + u * (high - low))
  return min(max(float(f'{x:.{_DIGITS}g}'), low), high)  # rounding never leaves the bounds


def unit_points(sampler: str, d: int, n: int, seed: int):
  """[n, d] points in the unit cube. 'grid' needs n = k**d (k values per dimension, both
  ends included); 'sobol' and 'halton' are scrambled from `seed`, so the same seed gives
  the same points on every machine."""
  if sampler not in SAMPLERS:
    raise ValueError(f'sampler {sampler!r} is not known; valid: {", ".join(SAMPLERS)}')
  if d == 0:
    return np.zeros((n, 0))
  if sampler == 'grid':
    k = round(n ** (1 / d))
    if k ** d != n:
      raise ValueError(f'a grid over {d} dimension(s) needs trials = k**{d} (k values each), '
                       f'got {n}')
    axis = np.linspace(0.0, 1.0, k) if k > 1 else np.array([0.5])
    return np.stack(np.meshgrid(*[axis] * d, indexing='ij'), -1).reshape(n, d)
  from scipy.stats import qmc  # noqa: PLC0415
  kind = qmc.Sobol if sampler == 'sobol' else qmc.Halton
  engine = kind(d, scramble=True, rng=seed)
  with warnings.catch_warnings():  # Sobol' balance wants n a power of 2; any n is allowed
    warnings.simplefilter('ignore', UserWarning)
    return engine.random(n)


def points(space: dict[str, dict], n: int, seed: int, sampler: str) -> list[dict[str, Any]]:
  """n points of a checked space, its dimensions drawn together (a joint low-discrepancy
  sequence over them, in the order given)."""
  names = list(space)
  cube = unit_points(sampler, len(names), n, seed)
  return [{name: value(space[name], u) for name, u in zip(names, row)} for row in cube]


def own_points(space: dict[str, dict], n: int, seed: int, sampler: str) -> list[dict[str, Any]]:
  """n points of a checked space, each dimension drawn on its own from a seed of `seed`
  and its name: a dimension two spaces share gets the same values in both, whatever else
  each declares. A grid is one grid per dimension (n values), its order shuffled from the
  same seed so that two dimensions are not paired end to end."""
  out = [{} for _ in range(n)]
  for name, dim in space.items():
    own_seed = (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**32
    column = unit_points(sampler, 1, n, own_seed)[:, 0]
    if sampler == 'grid':
      column = np.random.default_rng(own_seed).permutation(column)
    for point, u in zip(out, column):
      point[name] = value(dim, u)
  return out
