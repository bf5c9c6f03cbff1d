"""Name-keyed registry of backbones and the parameter budgets they are sized to.

Shape legend used across archs/: B batch, T time, D model width, H/W image height/width,
C channels.

A backbone is a Linen module built from a frozen config dataclass, called as
`module(x, train=...)`:
  sequence  `[B, T, D] -> [B, T, D]`
  image     `[B, H, W, C] -> [B, D]`
  encdec    `(src [B, S, D], tgt [B, T, D]) -> [B, T, D]`, called as `module(src, tgt, ...)`
The harness adds the task's input adapter and head around it, so a backbone never sees a
task.

Padding. Where a task's examples are end-padded, a sequence or encdec backbone whose
`__call__` takes a `mask` keyword gets `mask=[B, T]` bool (the source's [B, S] for
encdec): True at real positions, False on the padding, which only ever follows them. It
must keep every output at a real position independent of the padding (attention masks the
padded keys; a backward scan starts at each example's last real position). A causal
backbone needs no mask (no real position follows the padding) and may leave it out; a
bidirectional one without it cannot serve a padded task (`ArchSpec.takes_mask`).

A causal sequence backbone may also run token by token through its own layers, as it
declares in `ArchSpec.decoding` (archs/decoding.py).

Precision follows the Flax convention: besides its config, a module declares `dtype` (the
computation dtype) and `param_dtype` (the parameters'), both float32 by default. Built with
`dtype=jnp.bfloat16` it is mixed precision: bf16 matmuls and activations, float32
parameters, and float32 wherever accumulation or a range needs it (softmax, normalisation
statistics, recurrent carries, the LRU's complex recurrence). The dtype is a module
attribute, not a config field, so a config (a record's identity, the width solved for a
budget) is the same in every precision.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import pathlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import flax.linen as nn
from flax import nnx

from archbench.archs.decoding import Decoding
from archbench.common import files, search_space

# Parameter budgets (backbone parameters). Each architecture solves its width to land within
# +-10% of the budget, so families are compared at equal parameter count.
SIZES: dict[str, int] = {
    'tiny': 20_000,      # unit tests
    'small': 100_000,    # CPU suites
    'base': 1_000_000,   # accelerators
    'large': 10_000_000,  # accelerators
}
BUDGET_TOLERANCE = 0.10
# What `archbench tune` searches for a backbone with these config fields (ArchSpec.search_space):
# dropout between layers, and the parameter-free positional encodings (a learned table
# would move the parameter count off the budget).
DROPOUT_SPACE = {'dropout': {'scale': 'linear', 'low': 0.0, 'high': 0.3}}
POSITIONS_SPACE = {'positions': {'scale': 'choice', 'choices': ('sinusoidal', 'rope', 'alibi')}}

# Nominal inputs used only to count parameters (sequence length and image size do not change
# any backbone's parameter count; the channel count of an image changes the first conv only).
_COUNT_LENGTH = 8
_COUNT_IMAGE = (8, 8, 1)
INPUT_KINDS = ('sequence', 'image', 'encdec')
# `ArchSpec.covering` gives up beyond this depth: a receptive field that has not covered
# the input by then does not grow with depth.
_MAX_COVERING_DEPTH = 64


class PrecisionUnsupported(ValueError):
  """A backbone asked to compute in a dtype its module does not declare (see ArchSpec.build);
  the harness reports it as a usage error."""


@dataclasses.dataclass(frozen=True)
class ArchSpec:
  """What the harness needs to know about a backbone.

  Attributes:
    name: registry key, e.g. 'lstm'.
    family: 'convolution', 'recurrence', 'linear recurrence' or 'attention'.
    description: one line for `archbench list`.
    module: the backbone class, built as `module(config)`: a Linen module, or an NNX
      module (`module(config, rngs=...)`), which the harness wraps with
      `flax.nnx.bridge.ToLinen` so both run through the same Linen-based harness. To run
      in bfloat16 it must declare a `dtype` attribute (Linen) or `__init__` keyword (NNX),
      the computation dtype, as Flax's own layers do (see `build`).
    config_for_width: width -> config at the default depth.
    input_kind: 'sequence', 'image' or 'encdec' (see the module docstring).
    causal: True if always causal, False if always bidirectional, None if the config has
      a `causal` field the harness sets per task.
    flops: (config, shape) -> forward FLOPs for one example, counted analytically (XLA's
      cost_analysis counts a scan body once, not T times). shape is (T, D) for sequence,
      (H, W, C) for image and (S, T, D) for encdec backbones.
    width_step: widths are searched in multiples of this (e.g. the number of heads).
    uses_scan: True where the forward pass contains a lax.scan/while loop, so that
      cost_analysis() undercounts and only the analytic count is valid.
    details: config -> extra facts for `archbench list` (a receptive field is listed by itself).
    depth_fields: the config fields that set the depth (layers, blocks, stages); a suite's
      `depth` setting sets these. Empty: the architecture has no depth knob.
    receptive_field: config -> how many input steps one output step sees, for a backbone
      whose view is finite (a TCN's dilated convolutions); None where an output can see the
      whole input (recurrences, attention). Such a backbone is deepened to cover a task's
      input (`covering`), and it needs `depth_fields`.
    decoding: the module's token-by-token capability, for causal sequence backbones that
      have one: `Decoding.CACHE` (its call takes `decode=True` and keeps its state in
      Flax's 'cache' collection) or `Decoding.STEP` (its `initial_carry` and `step`
      methods); see archs/decoding.py. Either runs the module's own layers on its own
      parameters. None where each output needs a whole-sequence call. With `causal=None`
      it serves only the configs built causal (see `decoding_for`).
    backward_factor: backward FLOPs / forward FLOPs, so a training step costs
      (1 + backward_factor) x forward. 2 where matmuls dominate (one matmul each for the
      input and the weight gradients); more where elementwise ops with costly derivatives
      weigh in (gates, scans). Each value is checked against XLA in tests/test_flops.py.
    search_space: {config field: dimension} the tuner searches for this architecture, on
      top of the suite's training dimensions (`archbench tune`; the dimension's format is
      common/search_space.py), e.g. {'dropout': {'scale': 'linear', 'low': 0.0, 'high':
      0.3}}. Options that move the parameter count off the budget do not belong here.
  """
  name: str
  family: str
  description: str
  module: type[nn.Module]
  config_for_width: Callable[[int], Any]
  input_kind: str
  causal: bool | None
  flops: Callable[[Any, tuple[int, ...]], float]
  width_step: int = 1
  uses_scan: bool = False
  backward_factor: float = 2.0
  details: Callable[[Any], dict[str, Any]] | None = None
  depth_fields: tuple[str, ...] = ()
  decoding: Decoding | None = None
  receptive_field: Callable[[Any], int] | None = None
  search_space: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict, hash=False)

  @property
  def takes_mask(self) -> bool:
    """Whether the module's call takes `mask`, the padding mask (module docstring)."""
    return 'mask' in inspect.signature(self.module.__call__).parameters

  @property
  def declares_dtype(self) -> bool:
    """Whether the module takes a `dtype` (a Linen field or an NNX `__init__` keyword)."""
    return 'dtype' in inspect.signature(self.module.__init__).parameters

  def build(self, config, dtype=jnp.float32) -> nn.Module:
    """The backbone module for `config`, computing in `dtype` (parameters stay float32).

    A module that declares no `dtype` (a plug-in written without one) builds in float32
    only: run in another dtype it would silently compute in float32, so that raises
    `PrecisionUnsupported` instead.
    """
    if self.declares_dtype:
      kwargs = {'dtype': dtype}
    elif jnp.dtype(dtype) == jnp.float32:
      kwargs = {}
    else:
      raise PrecisionUnsupported(
          f'{self.name} ({self.module.__module__}.{self.module.__qualname__}) cannot run in '
          f'{jnp.dtype(dtype).name}: its module must declare a `dtype` attribute, the '
          'computation dtype, and pass it to its layers (the Flax convention; see '
          'archs/transformer.py)')
    if isinstance(self.module, type) and issubclass(self.module, nnx.Module):
      return nnx.bridge.ToLinen(self.module, args=(config,), kwargs=kwargs)
    return self.module(config, **kwargs)

  def depth_overrides(self, depth: int | None) -> dict[str, int]:
    """Backbone overrides that set the depth to `depth` (none for None)."""
    return {} if depth is None else {name: depth for name in self.depth_fields}

  def config_at(self, width: int, depth: int | None = None):
    """The config of `width` at the default depth, or at `depth`."""
    return dataclasses.replace(self.config_for_width(width), **self.depth_overrides(depth))

  def config(self, size: str, depth: int | None = None):
    """The config whose backbone parameter count is closest to the size's budget, at the
    default depth or at `depth` (the width re-solved for it)."""
    return self.config_at(solve_width(self.name, budget(size), depth), depth)

  def sees(self, config, length: int) -> bool:
    """Whether one output step of `config` can see `length` input steps (always, for a
    backbone without a finite receptive field)."""
    return self.receptive_field is None or self.receptive_field(config) >= length

  def covering(self, size: str, length: int):
    """The size's config, deepened where its receptive field is shorter than `length`: the
    fewest levels that see `length` steps, at the width that keeps the size's budget (Bai
    et al. choose the depth so). Never shallower than the default depth."""
    config = self.config(size)
    if self.sees(config, length):
      return config
    depth = getattr(config, self.depth_fields[0])
    while not self.sees(dataclasses.replace(config, **self.depth_overrides(depth)), length):
      depth += 1
      if depth > _MAX_COVERING_DEPTH:
        raise ValueError(f'{self.name}: no depth up to {_MAX_COVERING_DEPTH} sees {length} '
                         'steps')
    return self.config(size, depth)

  def coverage(self, config, length: int) -> dict[str, Any] | None:
    """The record's fact about what one output step sees of a `length`-step input, for a
    backbone with a finite receptive field (None otherwise)."""
    if self.receptive_field is None:
      return None
    return {'receptive_field': self.receptive_field(config), 'input_length': length,
            'sees_whole_input': self.sees(config, length)}

  def param_count(self, config) -> int:
    return count_params(self, config)

  def decoding_for(self, config) -> Decoding | None:
    """`decoding` where this config is causal (always, or by its `causal` field), else
    None: a bidirectional output needs the whole sequence, so it cannot decode. A config
    may also say it cannot (a `decodes` property that is False); generation then reruns
    the whole model per token."""
    if self.decoding is None or self.causal is False or not getattr(config, 'decodes', True):
      return None
    return self.decoding if self.causal or getattr(config, 'causal', False) else None


_REGISTRY: dict[str, ArchSpec] = {}


def register(spec: ArchSpec) -> ArchSpec:
  if spec.name in _REGISTRY:
    raise ValueError(f'architecture {spec.name!r} registered twice')
  if spec.input_kind not in INPUT_KINDS:
    raise ValueError(f'{spec.name}: input_kind must be one of {INPUT_KINDS}')
  fields = {f.name for f in dataclasses.fields(spec.config_for_width(8 * spec.width_step))}
  if set(spec.depth_fields) - fields:
    raise ValueError(f'{spec.name}: depth_fields {spec.depth_fields} are not all fields of '
                     f'its config ({", ".join(sorted(fields))})')
  if not hasattr(spec.config_for_width(8 * spec.width_step), 'width'):
    raise ValueError(f'{spec.name}: its config needs a `width` (the D it maps to)')
  if spec.receptive_field is not None and not spec.depth_fields:
    raise ValueError(f'{spec.name}: a receptive field needs depth_fields, the depth that '
                     'widens it')
  strangers = sorted(set(spec.search_space) - fields)
  if strangers:
    raise ValueError(f'{spec.name}: search_space names {", ".join(strangers)}, not fields of '
                     f'its config ({", ".join(sorted(fields))})')
  spec = dataclasses.replace(spec, search_space={
      field: search_space.check(f'{spec.name}.search_space.{field}', dim)
      for field, dim in spec.search_space.items()})
  if spec.decoding is not None:
    try:
      spec = dataclasses.replace(spec, decoding=Decoding(spec.decoding))
    except ValueError:
      raise ValueError(f'{spec.name}: decoding must be one of '
                       f'{", ".join(d.value for d in Decoding)} or None') from None
  if spec.decoding is not None and (spec.input_kind != 'sequence' or spec.causal is False):
    raise ValueError(f'{spec.name}: decoding is for causal sequence backbones')
  if (spec.decoding is not None and spec.causal is None
      and 'causal' not in fields):
    raise ValueError(f'{spec.name}: decoding with causal=None needs a `causal` field in its '
                     'config (decoding serves the causal configs only)')
  _REGISTRY[spec.name] = spec
  return spec


def get(name: str) -> ArchSpec:
  if name not in _REGISTRY:
    raise KeyError(f'unknown architecture {name!r}; valid: {", ".join(names())}')
  return _REGISTRY[name]


def names() -> list[str]:
  return list(_REGISTRY)


def budget(size: str) -> int:
  if size not in SIZES:
    raise KeyError(f'unknown size {size!r}; valid: {", ".join(SIZES)}')
  return SIZES[size]


def count_params(spec: ArchSpec, config) -> int:
  """Exact backbone parameter count, from shapes only (no FLOPs spent)."""
  module = spec.build(config)
  if spec.input_kind == 'image':
    inputs = (jax.ShapeDtypeStruct((1, *_COUNT_IMAGE), jnp.float32),)
  else:
    sequence = jax.ShapeDtypeStruct((1, _COUNT_LENGTH, config.width), jnp.float32)
    inputs = (sequence, sequence) if spec.input_kind == 'encdec' else (sequence,)
  shapes = jax.eval_shape(functools.partial(module.init, train=False),
                          jax.random.PRNGKey(0), *inputs)
  return sum(int(a.size) for a in jax.tree_util.tree_leaves(shapes))


@functools.cache
def _count_at_width(name: str, width: int, depth: int | None = None) -> int:
  spec = get(name)
  return count_params(spec, spec.config_at(width, depth))


# Solved widths are cached on disk: solving traces the model ~6 times (0.1-0.2 s each), and
# `archbench list` solves every architecture at every size. The key holds a digest of the
# code that defines the architecture (archs/ itself, plus a plug-in's own source file) and
# the flax/jax versions, so an edited architecture is solved afresh.
_CACHE_NAME = 'widths.json'  # in files.cache_dir(), read when used (tests move it)
_ARCHS_DIR = pathlib.Path(__file__).resolve().parent


@functools.cache
def _builtin_digest() -> str:
  import flax  # noqa: PLC0415  (only for its version)
  digest = hashlib.sha1(f'{jax.__version__}/{flax.__version__}'.encode())
  for path in sorted(_ARCHS_DIR.glob('*.py')):
    digest.update(path.read_bytes())
  return digest.hexdigest()


def _code_digest(name: str) -> str:
  """archs/ plus the source files outside it that define `name` (a plug-in's module and
  config function); code without a readable source file is keyed by its qualified name."""
  spec = get(name)
  digest = hashlib.sha1(_builtin_digest().encode())
  for obj in (spec.module, spec.config_for_width):
    try:
      path = pathlib.Path(inspect.getsourcefile(obj)).resolve()
    except (TypeError, OSError):
      digest.update(f'{getattr(obj, "__module__", "")}.{getattr(obj, "__qualname__", "")}'.encode())
      continue
    if path.parent != _ARCHS_DIR:
      digest.update(path.read_bytes())
  return digest.hexdigest()[:16]


def _read_cache() -> dict[str, list[int]]:
  try:
    return json.loads((files.cache_dir() / _CACHE_NAME).read_text())
  except (OSError, ValueError):
    return {}


def _write_cache(key: str, value: list[int]) -> None:
  try:
    cache = _read_cache()
    cache[key] = value
    # Concurrent writers may drop each other's entry, never corrupt the file.
    files.write_atomically(files.cache_dir() / _CACHE_NAME, json.dumps(cache))
  except OSError:
    pass  # read-only home: solve again next time


@functools.cache
def _solved(name: str, budget: int, depth: int | None = None) -> tuple[int, int]:
  """(width, backbone parameters) for a budget at the default depth or at `depth`, from the
  disk cache when it has them."""
  key = f'{name}:{budget}:{_code_digest(name)}' + ('' if depth is None else f':depth={depth}')
  cached = _read_cache().get(key)
  if isinstance(cached, list) and len(cached) == 2:
    return cached[0], cached[1]
  width = _solve_width(name, budget, depth)
  solved = (width, _count_at_width(name, width, depth))
  _write_cache(key, list(solved))
  return solved


def solve_width(name: str, budget: int, depth: int | None = None) -> int:
  """The width (a multiple of `width_step`) whose parameter count is closest to `budget`,
  at the default depth or at `depth`."""
  return _solved(name, budget, depth)[0]


def _solve_width(name: str, budget: int, depth: int | None = None) -> int:
  """Solve for the width (a multiple of `width_step`) closest to `budget`.

  Parameters grow monotonically, about quadratically, with width: a quadratic through two
  probes gives the starting point, then a walk finds the bracketing pair of widths.
  """
  step = get(name).width_step
  count = lambda k: _count_at_width(name, k * step, depth)
  k1, k2 = 4, 16
  p1, p2 = count(k1), count(k2)
  # p(k) ~ a k^2 + b k through both probes; take the positive root of p(k) = budget.
  a = (p2 / k2 - p1 / k1) / (k2 - k1)
  b = p1 / k1 - a * k1
  guess = (-b + (b * b + 4 * a * budget) ** 0.5) / (2 * a) if a > 0 else budget / max(b, 1)
  k = max(1, round(guess))
  while count(k) < budget:
    k += 1
  while k > 1 and count(k - 1) >= budget:
    k -= 1
  best = min((k - 1, k) if k > 1 else (k,), key=lambda j: abs(count(j) - budget))
  return best * step


def budget_params(name: str, size: str) -> int:
  """Backbone parameters of `name` at `size` (what `archbench list` shows)."""
  return _solved(name, budget(size))[1]


def dense_flops(d_in: int, d_out: int, bias: bool = True) -> float:
  """Multiply-adds count as two FLOPs; a bias add as one per output."""
  return 2.0 * d_in * d_out + (d_out if bias else 0)
