"""Text generation: sampling autoregressively from a trained causal model, and scoring
the samples with the task's own check (Task.score_samples).

A language model's bits per character says how well it predicts the next character;
sampling shows whether what it generates is well formed, which a low average loss does
not guarantee (a model can spread a little mass over impossible continuations everywhere).

Sampling runs token by token through the backbone's registered `Decoding` (its step
function and cache: O(1) work per token for recurrences, one key/value row for attention),
with the task model's embedding before the step and its head after. A backbone without one
(a plug-in that registers none) falls back to `sample_recompute`, which reruns the whole
model for every token and is the reference the cached path is tested against.
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from archbench.archs import registry
from archbench.benchmarks.measure import timing
from archbench.data.spec import Task


def _draw(logits, key, i, temperature: float):
  """Token i from its logits [B, V]: argmax at temperature 0, else a draw from
  softmax(logits / temperature) with the key folded with i (both paths share this, so the
  same logits give the same token)."""
  if temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  token = jax.random.categorical(jax.random.fold_in(key, i), logits / temperature)
  return token.astype(jnp.int32)


def _buffer(prompts, length: int):
  """[B, P] prompts -> [B, length] token buffer holding them, zeros after."""
  b, p = prompts.shape
  if not 1 <= p <= length:
    raise ValueError(f'the prompt length must be between 1 and length={length}, got {p}')
  return jnp.zeros((b, length), jnp.int32).at[:, :p].set(prompts.astype(jnp.int32))


def sample_recompute(params, prompts, key, *, model, length: int,
                     temperature: float = 1.0) -> jax.Array:
  """[B, P] prompt tokens -> [B, length] tokens by rerunning the whole model per token.

  Pure and jittable. Each step reruns the model on the whole buffer (0 beyond the tokens
  drawn so far) and reads the logits at position i - 1, which predict token i; causality
  makes the unfilled tail invisible to them. O(length) full forward passes: the reference
  for `sample_cached`, and the path for backbones without a step function.
  """
  tokens = _buffer(prompts, length)

  def body(i, tokens):
    logits = model.apply(params, tokens, train=False)  # [B, T, V]
    last = jax.lax.dynamic_index_in_dim(logits, i - 1, 1, keepdims=False)  # [B, V]
    return tokens.at[:, i].set(_draw(last, key, i, temperature))

  return jax.lax.fori_loop(prompts.shape[1], length, body, tokens)


def _backbone_class_and_config(backbone) -> tuple[type, Any]:
  if isinstance(backbone, nnx.bridge.ToLinen):  # an NNX backbone built as module(config)
    return backbone.nnx_class, (backbone.args[0] if backbone.args else None)
  return type(backbone), getattr(backbone, 'config', None)


def decoding_of(model, arch: registry.ArchSpec | None = None
                ) -> tuple[registry.Decoding, Any] | None:
  """(decoding, backbone config) when `model` (a harness TaskModel) can generate through
  its backbone's step: a per-token task on tokens, a backbone whose config is causal and
  that registers a `Decoding`. `arch` is the backbone's spec; without it the spec is found
  in the registry by the backbone's class. None: generate by recomputing."""
  backbone, spec = getattr(model, 'backbone', None), getattr(model, 'spec', None)
  if backbone is None or spec is None or spec.kind != 'per_token' or spec.vocab_size is None:
    return None
  cls, config = _backbone_class_and_config(backbone)
  if arch is None:
    arch = next((s for s in map(registry.get, registry.names())
                 if s.module is cls and s.decoding is not None), None)
  decoding = None if arch is None or config is None else arch.decoding_for(config)
  return None if decoding is None else (decoding, config)


def _stepper(params, model, decoding: registry.Decoding, config):
  """step(cache, tokens [B]) -> (cache, logits [B, V]): the task model's embedding, the
  backbone's decoding step and the head, each from its own sub-parameters, in the model's
  dtype (the step computes in its input's), the logits float32 as the model's are."""
  p = params['params']
  embed = nn.Embed(model.spec.vocab_size, model.width, dtype=model.dtype)
  head = nn.Dense(p['head']['kernel'].shape[-1], dtype=model.dtype)

  def step(cache, tokens):
    x = embed.apply({'params': p['embed']}, tokens)  # [B, D]
    cache, y = decoding.step(config, p['backbone'], cache, x)
    return cache, head.apply({'params': p['head']}, y).astype(jnp.float32)

  return step


def _require_decoding(model, arch):
  found = decoding_of(model, arch)
  if found is None:
    raise ValueError('this model has no token-by-token decoding (a per-token task on tokens '
                     'and a causal backbone that registers one); use sample_recompute')
  return found


def decode_logits(params, tokens, *, model, arch: registry.ArchSpec | None = None):
  """[B, T] tokens -> [B, T, V] logits, one position at a time through the cache (teacher
  forcing): equal, within float rounding, to `model.apply(params, tokens)`."""
  decoding, config = _require_decoding(model, arch)
  step = _stepper(params, model, decoding, config)
  cache = decoding.init(config, tokens.shape[0], tokens.shape[1])
  _, logits = jax.lax.scan(step, cache, tokens.T)  # [T, B, V]
  return jnp.swapaxes(logits, 0, 1)


def sample_cached(params, prompts, key, *, model, length: int, temperature: float = 1.0,
                  arch: registry.ArchSpec | None = None) -> jax.Array:
  """[B, P] prompt tokens -> [B, length] tokens through the backbone's step and cache.

  Pure and jittable. The prompt's first P - 1 tokens only fill the cache (prefill); then
  each step reads the last token and draws the next from the step's logits. One step per
  token, with a cache sized `length`; the same draws (`_draw`) as `sample_recompute`.
  """
  decoding, config = _require_decoding(model, arch)
  tokens = _buffer(prompts, length)
  b, p = prompts.shape
  step = _stepper(params, model, decoding, config)
  cache = decoding.init(config, b, length)
  cache = jax.lax.fori_loop(0, p - 1, lambda i, cache: step(cache, tokens[:, i])[0], cache)

  def body(i, carry):  # reads token i - 1, draws token i
    cache, tokens = carry
    cache, logits = step(cache, tokens[:, i - 1])
    return cache, tokens.at[:, i].set(_draw(logits, key, i, temperature))

  return jax.lax.fori_loop(p, length, body, (cache, tokens))[1]


def sample(params, prompts, key, *, model, length: int, temperature: float = 1.0,
           arch: registry.ArchSpec | None = None) -> jax.Array:
  """[B, P] prompt tokens -> [B, length] tokens: the prompt, then one token at a time drawn
  from the model's next-token distribution (softmax of logits / temperature; argmax at
  temperature 0, a Python number).

  Pure and jittable: through the backbone's decoding step where it has one
  (`sample_cached`), else by recomputing the whole prefix per token (`sample_recompute`).
  Both give the same tokens for the same key.
  """
  if decoding_of(model, arch) is None:
    return sample_recompute(params, prompts, key, model=model, length=length,
                            temperature=temperature)
  return sample_cached(params, prompts, key, model=model, length=length,
                       temperature=temperature, arch=arch)


def sample_and_score(params, task: Task, key: jax.Array, *, model, num_samples: int,
                     fast: bool = False, arch: registry.ArchSpec | None = None
                     ) -> tuple[dict[str, float], float]:
  """Continue the first `task.prompt_length` tokens of `num_samples` held-out inputs to the
  task's length at temperature 1 (`sample`; `arch` is the backbone's spec, found from the
  model when not given), and score the samples with `task.score_samples`.

  Returns ({'eval/<score>': value}, compile seconds).
  """
  inputs = task.eval_data['inputs'][:num_samples, :task.prompt_length]
  prompts = jnp.asarray(inputs, jnp.int32)  # [N, P]
  run = functools.partial(sample, model=model, length=task.spec.length, arch=arch)
  compiled, compile_s = timing.compile_ahead(run, params, prompts, key, fast=fast)
  samples = np.asarray(compiled(params, prompts, key))  # [N, T]
  return {f'eval/{k}': v for k, v in task.score_samples(samples).items()}, compile_s
