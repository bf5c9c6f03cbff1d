"""Text generation: sampling autoregressively from a trained causal model, and scoring
the samples with the task's own check (Task.score_samples).

A language model's bits per character says how well it predicts the next character;
sampling shows whether what it generates is well formed, which a low average loss does
not guarantee (a model can spread a little mass over impossible continuations everywhere).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from archbench.benchmarks.measure import timing
from archbench.data.spec import Task


def sample(params, prompts, key, *, model, length: int, temperature: float = 1.0) -> jax.Array:
  """[B, P] prompt tokens -> [B, length] tokens: the prompt, then one token at a time drawn
  from the model's next-token distribution (softmax of logits / temperature, > 0).

  Pure and jittable. Each step reruns the model on the whole buffer (0 beyond the tokens
  drawn so far) and reads the logits at position i - 1, which predict token i; causality
  makes the unfilled tail invisible to them. O(length) forward passes, as greedy_decode.
  """
  b, p = prompts.shape
  tokens = jnp.zeros((b, length), jnp.int32).at[:, :p].set(prompts.astype(jnp.int32))

  def body(i, tokens):
    logits = model.apply(params, tokens, train=False)  # [B, T, V]
    last = jax.lax.dynamic_index_in_dim(logits, i - 1, 1, keepdims=False)  # [B, V]
    token = jax.random.categorical(jax.random.fold_in(key, i), last / temperature)
    return tokens.at[:, i].set(token.astype(jnp.int32))

  return jax.lax.fori_loop(p, length, body, tokens)


def sample_and_score(params, task: Task, key: jax.Array, *, model, num_samples: int,
                     fast: bool = False) -> tuple[dict[str, float], float]:
  """Continue the first `task.prompt_length` tokens of `num_samples` held-out inputs to the
  task's length at temperature 1, and score the samples with `task.score_samples`.

  Returns ({'eval/<score>': value}, compile seconds).
  """
  inputs = task.eval_data['inputs'][:num_samples, :task.prompt_length]
  prompts = jnp.asarray(inputs, jnp.int32)  # [N, P]
  run = functools.partial(sample, model=model, length=task.spec.length)
  compiled, compile_s = timing.compile_ahead(run, params, prompts, key, fast=fast)
  samples = np.asarray(compiled(params, prompts, key))  # [N, T]
  return {f'eval/{k}': v for k, v in task.score_samples(samples).items()}, compile_s
