"""Model assembly: input adapter (task) -> backbone (arch) -> head (task).

This is the only place where an architecture meets a task. `archs/` and `data/` stay
ignorant of each other; the compatibility rules and the width plumbing live here.
"""
from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from archbench.archs import decoding as decoding_lib
from archbench.archs.registry import ArchSpec, PrecisionUnsupported, dense_flops
from archbench.benchmarks.core import PRECISIONS, UsageError, usage_errors  # noqa: F401
from archbench.data.spec import PAD, TaskSpec


def precision_dtype(precision: str) -> jnp.dtype:
  """The computation dtype of a precision name ('float32' or 'bfloat16', the mixed one:
  parameters, optimiser state and loss stay float32 in both)."""
  if precision not in PRECISIONS:
    raise UsageError(f'precision {precision!r} is not known; valid: {", ".join(PRECISIONS)}')
  return jnp.dtype(precision)


def incompatibility(arch: ArchSpec, spec: TaskSpec) -> str | None:
  """Why `arch` cannot serve `spec`, or None if it can."""
  if arch.input_kind == 'image':
    if spec.image_shape is None or spec.kind != 'classify':
      return f'{arch.name} reads images and serves image classification only'
  if arch.input_kind == 'encdec' and spec.kind != 'seq2seq':
    return f'{arch.name} is an encoder-decoder and serves seq2seq tasks only'
  if spec.causal and arch.causal is False:
    return f'{arch.name} is bidirectional and {spec.name} needs a causal model'
  if spec.padded and arch.causal is not True and not arch.takes_mask:
    return (f'{arch.name} can read the padding of {spec.name}: a backbone that is not '
            'always causal must take the padding `mask` (archs/registry.py)')
  return None


def served_kinds(arch: ArchSpec) -> list[str]:
  """The task kinds `arch` can serve, read off `incompatibility` with a prototype of each
  kind, so the rules live in one place."""
  prototypes = {
      'classify': TaskSpec('image', 'classify', 64, 'eval/accuracy', True, {}, 1.0,
                           image_shape=(8, 8, 1), num_classes=2),
      'per_token': TaskSpec('recall', 'per_token', 8, 'eval/accuracy', True, {}, 1.0,
                            vocab_size=4, num_classes=4),
      'per_token (causal)': TaskSpec('lm', 'per_token', 8, 'eval/accuracy', True, {}, 1.0,
                                     vocab_size=4, num_classes=4, causal=True),
      'regress': TaskSpec('reg', 'regress', 8, 'eval/mse', False, {}, 0.0,
                          feature_dim=1, out_dim=1),
      'seq2seq': TaskSpec('s2s', 'seq2seq', 8, 'eval/exact_match', True, {}, 1.0,
                          vocab_size=4, num_classes=4, target_length=4, causal=True),
  }
  return [k for k, spec in prototypes.items() if incompatibility(arch, spec) is None]


def check_compatible(arch: ArchSpec, spec: TaskSpec) -> None:
  reason = incompatibility(arch, spec)
  if reason:
    raise UsageError(f'cannot run {arch.name} on {spec.name}: {reason}')


def _coerce(value, field_type: Any):
  """Turn an override given as text/number into the config field's type (enums, bools)."""
  if isinstance(field_type, type) and issubclass(field_type, enum.Enum):
    return field_type(value)
  if field_type is bool and isinstance(value, str):
    if value.lower() not in ('true', 'false', '1', '0'):
      raise ValueError(f'expected a boolean, got {value!r}')
    return value.lower() in ('true', '1')
  if field_type in (int, float) and not isinstance(value, bool):
    return field_type(value)
  return value


def replace_config(config, overrides: dict[str, Any]):
  """`dataclasses.replace` with clear errors and type coercion, for suite overrides."""
  if not overrides:
    return config
  fields = typing.get_type_hints(type(config))
  unknown = set(overrides) - set(fields)
  if unknown:
    raise UsageError(f'{type(config).__name__} has no field(s) {", ".join(sorted(unknown))}; '
                     f'valid: {", ".join(fields)}')
  try:
    values = {k: _coerce(v, fields[k]) for k, v in overrides.items()}
  except ValueError as e:
    raise UsageError(f'{type(config).__name__}: {e}') from None
  return dataclasses.replace(config, **values)


def resolve_config(arch: ArchSpec, size: str, spec: TaskSpec, overrides=None,
                   longest: int | None = None):
  """The backbone config for a cell: the size's budget config, made causal where the task
  needs it and the architecture allows it, then the suite's overrides.

  A backbone with a finite receptive field is deepened at the same budget until it sees
  every real position it reads, `longest` of them (default: the task's longest sequence;
  a cell evaluated at longer lengths passes the longest of those), unless the overrides
  set its depth: then the record says whether it sees the whole input
  (`ArchSpec.coverage`)."""
  sets_depth = set(arch.depth_fields) & set(overrides or {})
  longest = longest or spec.longest_sequence
  config = arch.config(size) if sets_depth else arch.covering(size, longest)
  if arch.causal is None and hasattr(config, 'causal'):
    config = dataclasses.replace(config, causal=spec.causal)
  return replace_config(config, overrides or {})


def real_mask(lengths, length: int):
  """[B, length] bool: True at each example's first `lengths` [B] positions."""
  return jnp.arange(length)[None, :] < lengths[:, None]


def pool(y, lengths, causal: bool):
  """[B, T, D] -> [B, D]: a causal backbone's last real position (the only one that has
  seen every real input), else the mean over the real positions (all T without
  `lengths`)."""
  if lengths is None:
    return y[:, -1] if causal else jnp.mean(y, axis=1)
  if causal:
    return jnp.take_along_axis(y, (lengths - 1)[:, None, None], axis=1)[:, 0]
  # Summed and divided in float32: bfloat16 would round a length of 257 to 256.
  weights = real_mask(lengths, y.shape[1]).astype(jnp.float32)[..., None]  # [B, T, 1]
  mean = jnp.sum(y.astype(jnp.float32) * weights, axis=1) / lengths[:, None]
  return mean.astype(y.dtype)


def pack_prefix(inputs, decoder_inputs, lengths):
  """The prefix-LM sequence of end-padded sources: `inputs[:length]` then
  `decoder_inputs`, padding after both, [B, S + T]; and the positions [B, T] of the
  decoder inputs in it (length + 0 .. length + T - 1)."""
  s, t = inputs.shape[1], decoder_inputs.shape[1]
  p = jnp.arange(s + t)[None, :]  # [1, S + T]
  n = lengths[:, None]            # [B, 1]
  source = jnp.take_along_axis(inputs, jnp.minimum(p, s - 1), axis=1)
  target = jnp.take_along_axis(decoder_inputs, jnp.clip(p - n, 0, t - 1), axis=1)
  # The padding goes after the target, where no target position sees it.
  sequence = jnp.where(p < n, source, jnp.where(p < n + t, target, PAD))
  return sequence, n + jnp.arange(t)[None, :]


class TaskModel(nn.Module):
  """adapter(task) -> backbone(arch) -> head(task).

  Adapters: tokens -> embedding; features -> dense; image -> row-major pixel sequence and
  dense for sequence backbones, the raw grid for image backbones. Heads: a dense layer per
  position (per_token, seq2seq) or on a pooled vector (classify, regress): the last real
  position for causal backbones (the only one that has seen everything), the mean over
  the real positions otherwise.

  seq2seq takes `decoder_inputs` (the target shifted right behind BOS): an encoder-decoder
  backbone reads source and target apart; a causal sequence backbone reads them as one
  prefix-LM sequence `source, BOS, target[:-1]`, and its outputs from the BOS position on
  predict the target.

  `lengths` [B] (padded tasks, data/spec.py): the real input positions of each example
  (of the source for seq2seq); the rest is padding, which no output may depend on. The
  backbone gets the padding `mask` where it takes one (archs/registry.py), pooling reads
  real positions only, and a prefix-LM sequence is packed as `source[:length], BOS,
  target[:-1]`, padding after it, so the target never follows padding.

  `dtype` is the computation dtype of the adapter and head (the backbone is built with its
  own, see `build_model`); parameters are float32, and the outputs are cast to float32, so
  the loss, its softmax and the metrics are float32 in every precision.

  `decoding` is the backbone's token-by-token capability (`ArchSpec.decoding_for`), None
  where it has none. Where it has one and the task is per-token on tokens (`decodes`),
  `decode=True` runs the model in Flax's decode convention (archs/decoding.py): called on
  [B, L] tokens in `init`, it creates the 'cache' collection for L positions; each later
  call, on one position [B, 1] with 'cache' mutable, returns that position's logits
  through the backbone's own cache path.
  """
  backbone: nn.Module
  spec: TaskSpec
  input_kind: str
  width: int
  causal: bool
  dtype: Any = jnp.float32
  decoding: decoding_lib.Decoding | None = None
  takes_mask: bool = False  # the backbone's call takes the padding `mask` (ArchSpec)

  @property
  def decodes(self) -> bool:
    """Whether `decode=True` is available (see the class docstring)."""
    return (self.decoding is not None and self.spec.kind == 'per_token'
            and self.spec.vocab_size is not None)

  def _run_backbone(self, *args, train: bool, mask=None):
    """The backbone on `args`, given the padding `mask` where there is padding and it takes
    one (a causal backbone that takes none needs none)."""
    if mask is None or not self.takes_mask:
      return self.backbone(*args, train=train)
    return self.backbone(*args, train=train, mask=mask)

  @nn.compact
  def __call__(self, inputs, decoder_inputs=None, lengths=None, *, train: bool = False,
               embedded_offset=None, decode: bool = False):
    """`embedded_offset` [B, L, F] (shape: `offset_shape`), if given, is added to the input
    representation, the adapter's output, at every position: the long-range probes
    differentiate with respect to it (benchmarks/harness/evaluators/gradient.py)."""
    if decode and not self.decodes:
      raise ValueError('this model cannot decode token by token: it needs a per-token task '
                       'on tokens and a causal backbone that declares decoding')
    spec = self.spec
    x = inputs

    def shifted(x, start=0):  # x [B, L', ...] + the offset's positions start..start + L'
      if embedded_offset is None:
        return x
      length = x.size // (x.shape[0] * embedded_offset.shape[-1])  # L' (H*W for a grid)
      return x + embedded_offset[:, start:start + length].reshape(x.shape).astype(x.dtype)

    def head(y, features):  # float32 logits or predictions, whatever the compute dtype
      return nn.Dense(features, dtype=self.dtype, name='head')(y).astype(jnp.float32)

    if lengths is not None:
      # At least one real position, so that an all-padding filler example (evaluation
      # pads its last batch with them) still divides by a non-zero count.
      lengths = jnp.maximum(lengths, 1)
    mask = None if lengths is None else real_mask(lengths, inputs.shape[1])  # [B, T or S]
    if spec.kind == 'seq2seq':
      # Shared by both sides.
      embed = nn.Embed(spec.vocab_size, self.width, dtype=self.dtype, name='embed')
      if self.input_kind == 'encdec':
        source_length = inputs.shape[1]
        y = self._run_backbone(shifted(embed(inputs)),
                               shifted(embed(decoder_inputs), source_length), train=train,
                               mask=mask)
      elif lengths is None:
        sequence = jnp.concatenate([inputs, decoder_inputs], axis=1)  # [B, S + T]
        y = self.backbone(shifted(embed(sequence)), train=train)[:, inputs.shape[1]:]
      else:
        sequence, target_positions = pack_prefix(inputs, decoder_inputs, lengths)
        y = self._run_backbone(shifted(embed(sequence)), train=train,
                               mask=real_mask(lengths + decoder_inputs.shape[1],
                                              sequence.shape[1]))
        y = jnp.take_along_axis(y, target_positions[..., None], axis=1)  # [B, T, D]
      return head(y, spec.num_classes)  # [B, T, V]
    if self.input_kind == 'image':
      y = self.backbone(shifted(x), train=train)  # [B, H, W, C] -> [B, D]
    else:
      if spec.image_shape is not None:
        b = x.shape[0]
        x = x.reshape(b, -1, spec.image_shape[-1])  # [B, H, W, C] -> [B, H*W, C]
      if spec.vocab_size is not None:
        x = nn.Embed(spec.vocab_size, self.width, dtype=self.dtype, name='embed')(x)
      else:
        x = nn.Dense(self.width, dtype=self.dtype, name='adapter')(x)
      if decode:
        y = decoding_lib.decode_backbone(self, self.backbone, self.decoding, shifted(x))
      else:
        y = self._run_backbone(shifted(x), train=train, mask=mask)  # [B, T, D]
      if spec.kind != 'per_token':
        y = pool(y, lengths, self.causal)  # [B, D]
    return head(y, spec.num_classes if spec.kind != 'regress' else spec.out_dim)

  def offset_shape(self, inputs, decoder_inputs=None, lengths=None) -> tuple[int, ...]:
    """[B, L, F] of `embedded_offset`: L positions in reading order (source then target
    for seq2seq; row-major pixels for images) of F features (the width; an image
    backbone has no adapter and reads the pixels' C channels)."""
    b = inputs.shape[0]
    if self.spec.kind == 'seq2seq':
      return b, inputs.shape[1] + decoder_inputs.shape[1], self.width
    if self.input_kind == 'image':
      return b, int(np.prod(inputs.shape[1:3])), inputs.shape[3]
    return b, self.spec.length, self.width


def build_model(arch: ArchSpec, config, spec: TaskSpec, dtype='float32') -> TaskModel:
  """The task model of `arch` (at `config`) on `spec`, computing in `dtype` (a dtype or a
  precision name); a backbone that cannot compute in it is a UsageError."""
  dtype = precision_dtype(dtype) if isinstance(dtype, str) else jnp.dtype(dtype)
  causal = arch.causal if arch.causal is not None else bool(getattr(config, 'causal', False))
  try:
    backbone = arch.build(config, dtype=dtype)
  except PrecisionUnsupported as e:
    raise UsageError(str(e)) from None
  return TaskModel(backbone=backbone, spec=spec, input_kind=arch.input_kind,
                   width=config.width, causal=causal, dtype=dtype,
                   decoding=arch.decoding_for(config), takes_mask=arch.takes_mask)


def forward_flops(arch: ArchSpec, config, spec: TaskSpec) -> float:
  """Analytic forward FLOPs for one example: adapter + backbone + head + loss."""
  d = config.width
  out = spec.num_classes if spec.kind != 'regress' else spec.out_dim
  if spec.kind == 'seq2seq':
    s, t = spec.length, spec.target_length
    head = t * (dense_flops(d, out) + 5 * out)
    if arch.input_kind == 'encdec':
      return arch.flops(config, (s, t, d)) + head
    return arch.flops(config, (s + t, d)) + head
  if arch.input_kind == 'image':
    return arch.flops(config, spec.image_shape) + dense_flops(d, out) + 5 * out
  t = spec.length
  adapter = 0.0  # an embedding is a gather
  if spec.vocab_size is None:
    f = spec.image_shape[-1] if spec.image_shape is not None else spec.feature_dim
    adapter = t * dense_flops(f, d)
  positions = t if spec.kind == 'per_token' else 1
  pool = 0 if spec.kind == 'per_token' else t * d
  head = positions * (dense_flops(d, out) + 5 * out)  # projection + softmax/loss
  return adapter + arch.flops(config, (t, d)) + pool + head


def train_flops(arch: ArchSpec, config, spec: TaskSpec) -> float:
  """Analytic FLOPs of one training example: forward plus backward."""
  return (1.0 + arch.backward_factor) * forward_flops(arch, config, spec)
