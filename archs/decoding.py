"""Token-by-token decoding through a backbone's own modules.

A causal sequence backbone declares how it runs one position at a time
(`ArchSpec.decoding`), from the same parameters and the same layers as its whole-sequence
call; nothing here re-implements a backbone.

  CACHE  Flax's decode convention (flax.linen.MultiHeadDotProductAttention, the lm1b and
         wmt examples): the call takes `decode: bool`. Called with `decode=True` on a
         [B, L, D] sequence in `init`, the module creates its state for L positions in the
         'cache' collection (a key/value cache, a convolution's input buffer, the index of
         the next position); then each call on one position [B, 1, D], with 'cache'
         mutable, reads and advances it.
  STEP   the recurrences' convention: `initial_carry(batch) -> carry` and
         `step(carry, x_t [B, D]) -> (carry, y_t [B, D])`, methods of the module that call
         the submodules `__call__` uses.

`decode_backbone` runs either in Flax's decode convention (a STEP backbone's carry then
sits in the caller's 'cache' collection), so the harness's task model and `Stepwise` (a
bare backbone) both decode through `init_cache` and `step`, whatever the capability.
"""
from __future__ import annotations

import enum

import flax.linen as nn
import jax


class Decoding(str, enum.Enum):
  """A causal sequence backbone's token-by-token capability (see the module docstring)."""
  CACHE = 'cache'
  STEP = 'step'


def decode_backbone(owner: nn.Module, backbone: nn.Module, decoding: Decoding, x):
  """`backbone` on x [B, T, D] in Flax's decode convention, from a compact method of
  `owner` (of which `backbone` is a submodule): the call that creates the cache sees the
  whole sequence, every later call one position (T = 1)."""
  if decoding == Decoding.CACHE:
    return backbone(x, decode=True)
  if not owner.has_variable('cache', 'carry'):  # creating the cache, as Flax's attention does
    owner.variable('cache', 'carry', backbone.initial_carry, x.shape[0])
    return backbone(x)
  if x.shape[1] != 1:
    raise ValueError(f'a decoding step reads one position, got {x.shape[1]}')
  carry = owner.variable('cache', 'carry')
  carry.value, y = backbone.step(carry.value, x[:, 0])
  return y[:, None]


class Stepwise(nn.Module):
  """A bare backbone in Flax's decode convention, whatever its capability: [B, T, D] ->
  [B, T, D], its parameters under 'backbone' (as in the harness's task model)."""
  backbone: nn.Module
  decoding: Decoding

  @nn.compact
  def __call__(self, x, *, decode: bool = False):
    if decode:
      return decode_backbone(self, self.backbone, self.decoding, x)
    return self.backbone(x)


def init_cache(module: nn.Module, inputs) -> dict:
  """The 'cache' collection of a module in Flax's decode convention, for the batch and the
  L positions of `inputs` [B, L, ...] (not their values): the state before the first
  position. Under jit, the initialisers and the forward pass this traces are dead code."""
  return module.init(jax.random.PRNGKey(0), inputs, decode=True)['cache']


def step(module: nn.Module, variables, cache: dict, inputs):
  """One position, inputs [B, 1, ...], through a module in Flax's decode convention:
  (the advanced cache, its outputs [B, 1, ...])."""
  out, state = module.apply({**variables, 'cache': cache}, inputs, decode=True,
                            mutable=['cache'])
  return state['cache'], out

