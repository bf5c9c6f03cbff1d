"""Character-level language modelling on a text source whose entropy rate is known exactly.

Real text has no known entropy, so a model's bits per character cannot be read against
the best possible. Here the text comes from an order-k Markov chain over an alphabet of
V characters: each context (the last k characters) allows only `support` of the V next
characters, with seeded Dirichlet(1) probabilities, and every sequence starts from the
chain's stationary distribution. The process is then stationary, and its entropy rate

    H = sum_s pi(s) H(P(. | s))   bits per character

is the floor of the expected cross-entropy of any predictor that sees the last k
characters; a memoryless predictor can do no better than the unigram entropy. Because
most transitions are impossible, text sampled from a trained model can be checked: the
fraction of sampled transitions the source allows, and of samples that are valid
throughout (Task.score_samples).

Each example is L + 1 characters: inputs are the first L, targets the last L (next
character prediction, causal). The loss and accuracy count the targets from position
k - 1 on, those whose full context of k characters is in the input; the first k - 1 have
a higher floor (e.g. H(X_1 | X_0)), so counting them would put the floor above H.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from archbench.data.registry import register
from archbench.data.spec import Task, TaskSpec
from archbench.data.synthetic import generated_task

MAX_CONTEXTS = 1024  # V**k: the stationarity check squares a dense [V**k, V**k] matrix


@dataclasses.dataclass(frozen=True, eq=False)
class MarkovSource:
  """An order-k Markov chain over characters 0..V-1.

  A context s = (x_{t-k}, ..., x_{t-1}) has index sum_i x_{t-k+i} V^(k-1-i) (the oldest
  character most significant); after character c the context becomes (s * V + c) % V^k.

  Attributes:
    transitions: [V^k, V] P(next character | context); each row sums to 1 and has
      exactly `support` nonzero entries.
    stationary: [V^k] the stationary distribution over contexts (unique: the chain has
      one closed class, aperiodic).
  """
  transitions: np.ndarray
  stationary: np.ndarray
  order: int

  @property
  def alphabet_size(self) -> int:
    return self.transitions.shape[1]

  @property
  def entropy_rate(self) -> float:
    """H = sum_s pi(s) H(P(. | s)), in bits per character."""
    p = self.transitions
    plogp = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return float(-self.stationary @ plogp.sum(axis=1))

  @property
  def unigram(self) -> np.ndarray:
    """[V] the stationary frequency of each character (that of a context's last one)."""
    return self.stationary.reshape(-1, self.alphabet_size).sum(axis=0)

  @property
  def unigram_entropy(self) -> float:
    u = self.unigram[self.unigram > 0]
    return float(-np.sum(u * np.log2(u)))

  def contexts(self, tokens: np.ndarray) -> np.ndarray:
    """[N, T] characters -> [N, T - k] index of the context of each position t >= k."""
    t, v = tokens.shape[1], self.alphabet_size
    return sum(tokens[:, i:t - self.order + i].astype(np.int64) * v ** (self.order - 1 - i)
               for i in range(self.order))

  def score(self, tokens: np.ndarray) -> dict[str, float]:
    """Validity of [N, T] sequences under the source, over positions t >= k (those whose
    context lies in the sequence): the fraction of transitions with nonzero probability,
    and the fraction of sequences whose every transition has."""
    tokens = np.asarray(tokens)
    valid = self.transitions[self.contexts(tokens), tokens[:, self.order:]] > 0  # [N, T - k]
    return {'sample_valid_transitions': float(valid.mean()),
            'sample_valid': float(valid.all(axis=1).mean())}


def _context_matrix(transitions: np.ndarray) -> np.ndarray:
  """[S, S] transition matrix between contexts."""
  s, v = transitions.shape
  q = np.zeros((s, s))
  nxt = (np.arange(s)[:, None] * v + np.arange(v)) % s  # [S, V] next context
  np.add.at(q, (np.repeat(np.arange(s), v), nxt.ravel()), transitions.ravel())
  return q


def _stationary(q: np.ndarray) -> np.ndarray | None:
  """The stationary distribution if it is unique and the chain converges to it from
  every context (one closed class, aperiodic), else None: Q^(2^j) -> rows all equal.
  Transient contexts get probability 0: a few more squarings after convergence drive
  their geometrically decaying mass to underflow."""
  m = q
  for _ in range(64):
    m = m @ m
    if np.abs(m - m[0]).max() < 1e-12:
      for _ in range(8):
        m = m @ m
      return m[0] / m[0].sum()
  return None


@functools.cache
def markov_source(alphabet_size: int, order: int, support: int, source_seed: int) -> MarkovSource:
  """The seeded source; tables whose chain has no unique stationary distribution
  (several closed classes, or periodic) are redrawn from the same generator."""
  rng = np.random.default_rng(source_seed)
  contexts = alphabet_size ** order
  for _ in range(100):
    transitions = np.zeros((contexts, alphabet_size))
    for row in transitions:
      row[rng.choice(alphabet_size, support, replace=False)] = rng.dirichlet(np.ones(support))
    pi = _stationary(_context_matrix(transitions))
    if pi is not None:
      return MarkovSource(transitions, pi, order)
  raise ValueError(f'lm: no ergodic source found for alphabet_size={alphabet_size}, '
                   f'order={order}, support={support}, source_seed={source_seed}')


@functools.partial(jax.jit, static_argnums=1, static_argnames=('length', 'order'))
def lm_batch(key: jax.Array, batch_size: int, *, length: int, log_transitions: jax.Array,
             log_stationary: jax.Array, order: int) -> dict[str, jax.Array]:
  """B sequences of L + 1 characters: the first k from the stationary distribution over
  contexts, each next one from P(. | last k). inputs, targets, masks [B, L].

  Jitted with the tables as arguments, so tasks of the same shapes (every build of the
  task, every source) share one compilation."""
  contexts, v = log_transitions.shape
  k_start, k_steps = jax.random.split(key)
  context = jax.random.categorical(k_start, log_stationary, shape=(batch_size,))  # [B]
  start = jnp.stack([(context // v ** (order - 1 - i)) % v for i in range(order)], 1)  # [B, k]

  def step(context, step_key):
    c = jax.random.categorical(step_key, log_transitions[context])  # [B]
    return (context * v + c) % contexts, c

  _, rest = jax.lax.scan(step, context, jax.random.split(k_steps, length + 1 - order))
  tokens = jnp.concatenate([start, rest.T], axis=1).astype(jnp.int32)  # [B, L + 1]
  counted = (jnp.arange(length) >= order - 1).astype(jnp.float32)
  mask = jnp.broadcast_to(counted, (batch_size, length))
  return {'inputs': tokens[:, :-1], 'targets': tokens[:, 1:], 'loss_mask': mask,
          'metric_mask': mask}


@register('lm', 'character-level LM on a Markov source of known entropy rate (bits/char)')
def make_lm(seed: int = 0, length: int = 128, alphabet_size: int = 16, order: int = 2,
            support: int = 4, source_seed: int = 0, eval_size: int = 1000) -> Task:
  """The source is fixed by `source_seed` (the same text statistics for every run); the
  run's seed draws the training and held-out text, from disjoint streams.

  Headline: held-out bits per character, lower is better. Baseline: the unigram entropy
  (a memoryless model); floor: the entropy rate H (`floor/bits_per_char`); solved within
  5% of H. Samples are scored against `eval/sample_valid_transitions` = support / V, the
  rate of a uniformly random sampler.
  """
  if not (2 <= support <= alphabet_size and order >= 1 and length > order
          and alphabet_size ** order <= MAX_CONTEXTS):
    raise ValueError(f'lm: need 2 <= support <= alphabet_size, order >= 1, length > order '
                     f'and alphabet_size**order <= {MAX_CONTEXTS}')
  source = markov_source(alphabet_size, order, support, source_seed)
  with np.errstate(divide='ignore'):  # log 0 = -inf: impossible transitions
    log_transitions = jnp.asarray(np.log(source.transitions), jnp.float32)
    log_stationary = jnp.asarray(np.log(source.stationary), jnp.float32)
  generate = functools.partial(lm_batch, length=length, log_transitions=log_transitions,
                               log_stationary=log_stationary, order=order)
  unigram_bits = source.unigram_entropy
  spec = TaskSpec(
      name='lm', kind='per_token', length=length, vocab_size=alphabet_size,
      num_classes=alphabet_size, causal=True,
      metric='eval/bits_per_char', higher_is_better=False,
      baselines={'eval/bits_per_char': unigram_bits, 'eval/loss': unigram_bits * math.log(2),
                 'eval/accuracy': float(source.unigram.max()),
                 'floor/bits_per_char': source.entropy_rate,
                 'eval/sample_valid_transitions': support / alphabet_size},
      solved=1.05 * source.entropy_rate)
  params = {'length': length, 'alphabet_size': alphabet_size, 'order': order,
            'support': support, 'source_seed': source_seed, 'eval_size': eval_size}
  return generated_task(spec, params, generate, seed, eval_size, score_samples=source.score,
                        prompt_length=order)
