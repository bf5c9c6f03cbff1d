"""Text generation: sampling autoregressively from a trained causal model, and scoring
the samples with the task's own check (Task.score_samples).

A language model's bits per character says how well it predicts the next character;
sampling shows whether what it generates is well formed, which a low average loss does
not guarantee (a model can spread a little mass over impossible continuations everywhere).

Sampling runs token by token through the task model's decode path (`TaskModel(...,
decode=True)`: its embedding, the backbone's own cache path as its `ArchSpec.decoding`
declares it, its head; O(1) work per token for recurrences, one key/value row for
attention). A model without one (a backbone that declares no decoding) falls back to
`sample_recompute`, which reruns the whole model for every token and is the reference the
cached path is tested against.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from archbench.archs import decoding
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


def _append(tokens, logits, key, temperature: float):
  """[B, L] tokens and the logits [B, V] of their last position -> [B, L + 1]: token L
  drawn (`one_more`)."""
  drawn = _draw(logits, key, tokens.shape[1], temperature)
  return jnp.concatenate([tokens, drawn[:, None]], axis=1)


def sample_recompute(params, prompts, key, *, model, length: int,
                     temperature: float = 1.0, one_more: bool = False) -> jax.Array:
  """[B, P] prompt tokens -> [B, length] tokens by rerunning the whole model per token
  ([B, length + 1] with `one_more`, see `sample`).

  Pure and jittable. Each step reruns the model on the whole buffer (0 beyond the tokens
  drawn so far) and reads the logits at position i - 1, which predict token i; causality
  makes the unfilled tail invisible to them. O(length) full forward passes: the reference
  for `sample_cached`, and the path for models that cannot decode.
  """
  tokens = _buffer(prompts, length)

  def body(i, tokens):
    logits = model.apply(params, tokens, train=False)  # [B, T, V]
    last = jax.lax.dynamic_index_in_dim(logits, i - 1, 1, keepdims=False)  # [B, V]
    return tokens.at[:, i].set(_draw(last, key, i, temperature))

  tokens = jax.lax.fori_loop(prompts.shape[1], length, body, tokens)
  if not one_more:
    return tokens
  return _append(tokens, model.apply(params, tokens, train=False)[:, -1], key, temperature)


def decodes(model) -> bool:
  """Whether `model` generates through its decode path (`TaskModel.decodes`: a per-token
  task on tokens, a causal backbone that declares decoding); False: by recomputing."""
  return getattr(model, 'decodes', False)


def _stepper(params, model):
  """step(cache, tokens [B]) -> (cache, logits [B, V]): one position through the model's
  decode path, the logits float32 as the model's are."""
  def step(cache, tokens):
    cache, logits = decoding.step(model, params, cache, tokens[:, None])
    return cache, logits[:, 0]

  return step


def _require_decoding(model):
  if not decodes(model):
    raise ValueError('this model has no token-by-token decoding (a per-token task on tokens '
                     'and a causal backbone that declares one); use sample_recompute')


def decode_logits(params, tokens, *, model):
  """[B, T] tokens -> [B, T, V] logits, one position at a time through the cache (teacher
  forcing): equal, within float rounding, to `model.apply(params, tokens)`."""
  _require_decoding(model)
  cache = decoding.init_cache(model, tokens)
  _, logits = jax.lax.scan(_stepper(params, model), cache, tokens.T)  # [T, B, V]
  return jnp.swapaxes(logits, 0, 1)


def sample_cached(params, prompts, key, *, model, length: int,
                  temperature: float = 1.0, one_more: bool = False) -> jax.Array:
  """[B, P] prompt tokens -> [B, length] tokens through the model's decode path ([B,
  length + 1] with `one_more`, see `sample`).

  Pure and jittable. The prompt's first P - 1 tokens only fill the cache (prefill); then
  each step reads the last token and draws the next from the step's logits. One step per
  token, with a cache sized `length`; the same draws (`_draw`) as `sample_recompute`.
  `one_more` takes one step more, reading token length - 1 at the cache's last position.
  """
  _require_decoding(model)
  tokens = _buffer(prompts, length)
  p = prompts.shape[1]
  step = _stepper(params, model)
  cache = decoding.init_cache(model, tokens)
  cache = jax.lax.fori_loop(0, p - 1, lambda i, cache: step(cache, tokens[:, i])[0], cache)

  def body(i, carry):  # reads token i - 1, draws token i
    cache, tokens = carry
    cache, logits = step(cache, tokens[:, i - 1])
    return cache, tokens.at[:, i].set(_draw(logits, key, i, temperature))

  cache, tokens = jax.lax.fori_loop(p, length, body, (cache, tokens))
  if not one_more:
    return tokens
  return _append(tokens, step(cache, tokens[:, length - 1])[1], key, temperature)


def sample(params, prompts, key, *, model, length: int,
           temperature: float = 1.0, one_more: bool = False) -> jax.Array:
  """[B, P] prompt tokens -> [B, length] tokens: the prompt, then one token at a time drawn
  from the model's next-token distribution (softmax of logits / temperature; argmax at
  temperature 0, a Python number).

  `one_more`: [B, length + 1], one more token drawn from the last position's logits. The
  model reads `length` positions and predicts a token after each, so a task whose
  targets are its inputs behind a start token (image generation: the start, then every
  pixel but the last) has its whole target sequence in tokens 1 .. length.

  Pure and jittable: through the model's decode path where it has one (`sample_cached`),
  else by recomputing the whole prefix per token (`sample_recompute`). Both give the same
  tokens for the same key.
  """
  fn = sample_cached if decodes(model) else sample_recompute
  return fn(params, prompts, key, model=model, length=length, temperature=temperature,
            one_more=one_more)


def sample_and_score(params, task: Task, key: jax.Array, *, model, num_samples: int,
                     fast: bool = False) -> tuple[dict[str, float], float]:
  """Continue the first `task.prompt_length` tokens of `num_samples` held-out inputs to the
  task's length at temperature 1 (`sample`), and score the samples with
  `task.score_samples`.

  Returns ({'eval/<score>': value}, compile seconds).
  """
  inputs = task.eval_data['inputs'][:num_samples, :task.prompt_length]
  prompts = jnp.asarray(inputs, jnp.int32)  # [N, P]
  run = functools.partial(sample, model=model, length=task.spec.length)
  compiled, compile_s = timing.compile_ahead(run, params, prompts, key, fast=fast)
  samples = np.asarray(compiled(params, prompts, key))  # [N, T]
  return {f'eval/{k}': v for k, v in task.score_samples(samples).items()}, compile_s


def sample_images(params, task: Task, key: jax.Array, *, model, num_samples: int,
                  fast: bool = False) -> tuple[np.ndarray, float]:
  """`num_samples` images drawn from the trained model of an image generation task
  (Task.image_samples) at temperature 1: each from the start token alone (every held-out
  input's first token) to its last pixel (`sample` with `one_more`).

  Returns (pixels [N, H * W] in row-major order, compile seconds).
  """
  prompts = jnp.asarray(task.eval_data['inputs'][:num_samples, :1], jnp.int32)  # [N, 1]
  run = functools.partial(sample, model=model, length=task.spec.length, one_more=True)
  compiled, compile_s = timing.compile_ahead(run, params, prompts, key, fast=fast)
  return np.asarray(compiled(params, prompts, key))[:, 1:], compile_s
