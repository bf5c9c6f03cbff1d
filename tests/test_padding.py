"""Padding no model can see: a padded task (data/spec.py `padded`) padded further with its
`pad_to` parameter gives, for every sequence architecture (plug-ins included), the same
outputs at real positions and the same training steps. On a model that reads padding
(mean-pooling over it, attending to it, reading after it) these fail."""
import functools
import shutil
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from archbench import archs, data
from archbench.benchmarks import plugins
from archbench.benchmarks.core import TrainConfig
from archbench.benchmarks.harness import model as model_lib
from archbench.benchmarks.harness import train as train_lib
from selection import quick_subset  # tests/selection.py

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / 'examples' / 'mingru.py'
# Small tasks of each kind that pads: a classifier (end-padded expressions), a per-token
# task (bidirectional models see the tail) and seq2seq (padded sources).
TASKS = {
    'classify': ('listops', {'max_length': 24, 'min_length': 6, 'num_examples': 120,
                             'max_depth': 4}, 40),
    'per_token': ('reverse_string', {'length': 6, 'eval_size': 16}, 20),
    'seq2seq': ('translate', {'max_value': 300, 'test_size': 16}, 7),
}
SEQUENCE_ARCHS = [n for n in archs.names() if archs.get(n).input_kind != 'image']
# In the quick loop, one of each way of hiding padding: attention's key mask and a
# backward scan from each example's end (the plug-in test below reads a causal model at
# its last real position and packs a prefix-LM source).
OUTPUT_ARCHS = quick_subset(SEQUENCE_ARCHS, keep=('transformer', 'bigru'))


@functools.cache
def _task(kind: str, padded: bool):
  name, params, pad_to = TASKS[kind]
  return data.build(name, **params, **({'pad_to': pad_to} if padded else {}))


def _models(arch_name: str, kind: str):
  """(model on the task, model on the task padded further, the task, the padded task), or
  None where the architecture cannot serve the kind; each model is built from its own
  spec, as a run with `pad_to` builds it."""
  arch = archs.get(arch_name)
  tasks = _task(kind, False), _task(kind, True)
  if model_lib.incompatibility(arch, tasks[0].spec):
    return None
  built = [model_lib.build_model(arch, model_lib.resolve_config(arch, 'tiny', t.spec), t.spec)
           for t in tasks]
  return (*built, *tasks)


def _real_outputs(kind: str, outputs, batch):
  """The outputs a padding-blind model must keep: all of them for a pooled head, the
  real positions of a per-token head (zeros elsewhere); a seq2seq head is per target
  position, which padding of the source does not move."""
  if kind != 'per_token':
    return np.asarray(outputs)
  t = batch['lengths'].shape[0], _task(kind, False).spec.length
  real = np.arange(t[1])[None, :] < np.asarray(batch['lengths'])[:, None]
  return np.where(real[..., None], np.asarray(outputs)[:, :t[1]], 0.0)


def _check_outputs(arch_name: str, kind: str):
  built = _models(arch_name, kind)
  if built is None:
    return False
  model, padded_model, task, padded_task = built
  batch = {k: jnp.asarray(v) for k, v in task.eval_data.items()}
  padded_batch = {k: jnp.asarray(v) for k, v in padded_task.eval_data.items()}
  assert padded_batch['inputs'].shape[1] > batch['inputs'].shape[1]
  params = jax.jit(functools.partial(model.init, train=False))(
      jax.random.PRNGKey(0), *train_lib.model_args(task.spec, batch))
  apply = lambda m, b, spec: jax.jit(functools.partial(m.apply, train=False))(
      params, *train_lib.model_args(spec, b))
  plain = _real_outputs(kind, apply(model, batch, task.spec), batch)
  padded = _real_outputs(kind, apply(padded_model, padded_batch, padded_task.spec), batch)
  np.testing.assert_allclose(padded, plain, rtol=1e-4, atol=1e-5,
                             err_msg=f'{arch_name} on {kind}: padding changed the outputs')
  return True


@pytest.mark.parametrize('arch_name', OUTPUT_ARCHS)
def test_outputs_at_real_positions_ignore_padding(arch_name):
  served = [kind for kind in TASKS if _check_outputs(arch_name, kind)]
  assert served, f'{arch_name} serves none of the padded task kinds'


def _train(model, task, steps: int = 3):
  """The loss gradient after `steps` optimiser steps, and the steps' mean loss."""
  cfg = TrainConfig(steps=steps, batch_size=8, lr=3e-3, warmup_steps=1)
  optimizer = train_lib.make_optimizer(cfg)
  state = train_lib.init_state(model, task, optimizer, jax.random.PRNGKey(1), cfg.batch_size)
  chunk = jax.jit(functools.partial(train_lib.train_chunk, model=model, task=task,
                                    optimizer=optimizer, batch_size=cfg.batch_size,
                                    num_steps=steps))
  state, loss = chunk(state, jax.random.PRNGKey(2))
  batch = task.train_batch(jax.random.PRNGKey(4), cfg.batch_size)
  grads = jax.jit(jax.grad(train_lib.loss_fn), static_argnums=(1, 2))(
      state.params, model, task.spec, batch, jax.random.PRNGKey(5))
  return grads, float(loss)


@pytest.mark.slow
@pytest.mark.parametrize('arch_name', SEQUENCE_ARCHS)
def test_training_steps_ignore_padding(arch_name):
  """The same batches, padded further, give the same losses, and the same gradients
  after a few steps: the loss and its gradient come from real positions only. (Not the
  same parameters: Adam divides by the gradients' size, so a parameter whose gradient is
  zero but for float noise, such as attention's key bias, moves by noise times the
  learning rate, which changes no output.)"""
  kind = 'classify' if _models(arch_name, 'classify') else 'seq2seq'
  model, padded_model, task, padded_task = _models(arch_name, kind)
  grads, loss = _train(model, task)
  padded_grads, padded_loss = _train(padded_model, padded_task)
  assert padded_loss == pytest.approx(loss, rel=1e-4)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-6), grads, padded_grads)


def test_a_plug_in_gets_the_same_contract(monkeypatch, tmp_path):
  """The example plug-in (a causal NNX module that takes no mask) keeps its outputs too;
  a bidirectional plug-in without `mask` is refused on a padded task in one line."""
  monkeypatch.setattr(archs.registry, '_REGISTRY', {
      n: s for n, s in archs.registry._REGISTRY.items() if n != 'mingru'})
  monkeypatch.setattr(plugins, '_loaded', list(plugins._loaded))
  shutil.copy(EXAMPLE, tmp_path / 'mingru.py')
  plugins.load(str(tmp_path / 'mingru.py'))
  assert not archs.get('mingru').takes_mask
  assert _check_outputs('mingru', 'classify') and _check_outputs('mingru', 'seq2seq')
  blind = archs.registry.dataclasses.replace(archs.get('mingru'), name='blind', causal=False)
  reason = model_lib.incompatibility(blind, _task('classify', False).spec)
  assert reason and 'mask' in reason


def test_pad_to_pads_only():
  """pad_to keeps every example, label and length; it refuses to cut."""
  for kind in TASKS:
    task, padded = _task(kind, False), _task(kind, True)
    t = task.spec.length
    for key, value in task.eval_data.items():
      extra = padded.eval_data[key]
      np.testing.assert_array_equal(extra[:, :value.shape[1]] if extra.ndim > 1 else extra,
                                    value)
    assert padded.spec.longest_example == task.spec.longest_example == t
    name, params, _ = TASKS[kind]
    with pytest.raises(ValueError, match='pad_to must be at least'):
      data.build(name, **params, pad_to=t - 1)
    batch = task.train_batch(jax.random.PRNGKey(3), 4)
    padded_batch = padded.train_batch(jax.random.PRNGKey(3), 4)
    np.testing.assert_array_equal(padded_batch['inputs'][:, :t], batch['inputs'])
    np.testing.assert_array_equal(padded_batch['lengths'], batch['lengths'])
