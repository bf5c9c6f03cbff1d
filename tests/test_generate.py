"""Generation through the task model's decode path, the backbone's own cache path
(benchmarks/harness/generate.py): for every architecture in the registry that declares
decoding (plug-ins included), the cached path gives the logits of the whole-model call and
exactly the tokens of the recompute path; backbones without decoding fall back to
recomputing."""
import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench import archs
from archbench.archs import transformer
from archbench.benchmarks.harness import generate
from archbench.benchmarks.harness import model as model_lib
from archbench.data.spec import TaskSpec
from selection import quick_subset  # tests/selection.py

B, T, P, V = 3, 10, 3, 7  # batch, generated length, prompt length, vocabulary
DECODING = [n for n in archs.names() if archs.get(n).decoding is not None]


def _lm_spec(length=T) -> TaskSpec:
  return TaskSpec('lm', 'per_token', length, 'eval/accuracy', True, {}, 1.0,
                  vocab_size=V, num_classes=V, causal=True)


def _causal(spec, cfg):
  return dataclasses.replace(cfg, causal=True) if spec.causal is None else cfg


@functools.cache
def _model_and_params(name, overrides=(), seed=0):
  """The harness's TaskModel (embedding -> backbone -> head) on a tiny LM task, with every
  parameter perturbed (biases start at zero; a step that forgot one would still agree).
  Cached: both tests of an architecture share it."""
  spec = archs.get(name)
  cfg = dataclasses.replace(_causal(spec, spec.config('tiny')), **dict(overrides))
  model = model_lib.build_model(spec, cfg, _lm_spec())
  params = jax.jit(model.init)(jax.random.PRNGKey(seed), jnp.zeros((1, T), jnp.int32))
  rng = np.random.default_rng(seed + 1)
  params = jax.tree_util.tree_map(  # in numpy: an eager jnp add would compile per shape
      lambda a: jnp.asarray(np.asarray(a) + 0.3 * rng.standard_normal(a.shape), a.dtype),
      params)
  return spec, model, params


@functools.cache
def _whole_logits(name, seed=1) -> np.ndarray:
  """[B, T, V] logits of one whole-sequence call on random tokens (shared by both tests)."""
  _, model, params = _model_and_params(name)
  return np.asarray(jax.jit(model.apply)(params, _tokens(seed, (B, T))))


def _tokens(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).integers(0, V, shape), jnp.int32)


@pytest.mark.parametrize('name', quick_subset(DECODING))
def test_cached_logits_match_the_whole_model(name):
  """Teacher-forced logits, one position at a time through the cache, equal the logits of
  one whole-sequence call of the task model."""
  spec, model, params = _model_and_params(name)
  assert generate.decodes(model) and model.decoding == spec.decoding
  tokens = _tokens(1, (B, T))
  whole = _whole_logits(name)
  cached = np.asarray(jax.jit(lambda p, t: generate.decode_logits(
      p, t, model=model))(params, tokens))
  assert cached.shape == (B, T, V)
  assert np.std(whole) > 0.05  # logits that differ, so agreement means something
  np.testing.assert_allclose(cached, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', quick_subset(DECODING))
def test_cached_tokens_equal_recompute(name):
  """The cached path draws exactly the tokens that rerunning the whole model
  per token draws, for the same key, greedily and sampled; the prompt is kept.
  (Both temperatures in one compiled function per path: compiling dominates here.)"""
  _, model, params = _model_and_params(name)
  prompts = _tokens(2, (B, P))
  key = jax.random.PRNGKey(3)
  # Sample at the logits' own scale (a deep random TCN's reach hundreds), so that the draw
  # is a real draw and not an argmax in disguise.
  temperature = max(1.0, float(np.std(_whole_logits(name))))

  def run(fn):
    both = lambda p, x, k: [fn(p, x, k, model=model, length=T, temperature=t)
                            for t in (0.0, temperature)]
    return [np.asarray(a) for a in jax.jit(both)(params, prompts, key)]

  (greedy, sampled), (greedy_ref, sampled_ref) = run(generate.sample_cached), run(
      generate.sample_recompute)
  for cached, recomputed in ((greedy, greedy_ref), (sampled, sampled_ref)):
    assert cached.shape == (B, T)
    np.testing.assert_array_equal(cached[:, :P], np.asarray(prompts))
    np.testing.assert_array_equal(cached, recomputed)
  # A random model's greedy continuation may well be constant; its samples are not.
  assert len(np.unique(sampled[:, P:])) > 1


@pytest.mark.parametrize('name,overrides', [
    ('decoder', (('positions', transformer.Positions.LEARNED),)),
    pytest.param('tcn', (('weight_norm', True),), marks=pytest.mark.slow),  # whole suite only
])
def test_cached_tokens_equal_recompute_variants(name, overrides):
  """Config choices the step mirrors: the learned position table, weight normalisation."""
  _, model, params = _model_and_params(name, overrides)
  prompts, key = _tokens(4, (B, P)), jax.random.PRNGKey(5)
  run = lambda fn: np.asarray(jax.jit(lambda p, x, k: fn(
      p, x, k, model=model, length=T))(params, prompts, key))
  np.testing.assert_array_equal(run(generate.sample_cached), run(generate.sample_recompute))


@pytest.mark.parametrize('name', ['gru', 'decoder'])
def test_sample_goes_through_the_cache(name, monkeypatch):
  """`sample`, the harness's entry point, takes the cached path where there is one."""
  _, model, params = _model_and_params(name)
  monkeypatch.setattr(generate, 'sample_recompute', lambda *a, **k: pytest.fail('recomputed'))
  out = jax.eval_shape(lambda p, x, k: generate.sample(p, x, k, model=model, length=T),
                       params, _tokens(0, (B, P)), jax.random.PRNGKey(0))
  assert out.shape == (B, T)


class _PrefixMean(nn.Module):
  """A causal backbone with no step registered (as a plug-in may be): the running mean."""
  width: int = 8

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    x = nn.Dense(self.width)(x)
    return jnp.cumsum(x, axis=1) / jnp.arange(1, x.shape[1] + 1)[None, :, None]


def test_backbones_without_decoding_recompute():
  """No registered step (an unregistered backbone, or the transformer built bidirectional):
  `sample` recomputes, and asking for the cached path is a clear error."""
  model = model_lib.TaskModel(backbone=_PrefixMean(), spec=_lm_spec(), input_kind='sequence',
                              width=8, causal=True)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, T), jnp.int32))
  assert not generate.decodes(model)
  prompts, key = _tokens(6, (B, P)), jax.random.PRNGKey(7)
  np.testing.assert_array_equal(
      generate.sample(params, prompts, key, model=model, length=T),
      generate.sample_recompute(params, prompts, key, model=model, length=T))
  with pytest.raises(ValueError, match='no token-by-token decoding'):
    generate.sample_cached(params, prompts, key, model=model, length=T)
  spec = archs.get('transformer')
  bidirectional = model_lib.build_model(spec, spec.config('tiny'), _lm_spec())
  assert bidirectional.decoding is None and not generate.decodes(bidirectional)
  with pytest.raises(ValueError, match='cannot decode'):
    bidirectional.init(jax.random.PRNGKey(0), jnp.zeros((1, T), jnp.int32), decode=True)


def test_prompt_length_is_checked():
  _, model, params = _model_and_params('gru')
  for prompts in (jnp.zeros((B, 0), jnp.int32), jnp.zeros((B, T + 1), jnp.int32)):
    with pytest.raises(ValueError, match='prompt length'):
      generate.sample(params, prompts, jax.random.PRNGKey(0), model=model, length=T)
