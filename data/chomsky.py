"""Sequence tasks from the levels of the Chomsky hierarchy (Deletang et al. 2023, "Neural
Networks and the Chomsky Hierarchy", ICLR), generated on device from a `jax.random` key.

Regular: parity_check, even_pairs, modular_arithmetic, cycle_navigation. Deterministic
context-free: reverse_string, stack_manipulation. Context-sensitive: duplicate_string,
binary_addition. Alphabets, labels and scored positions follow the authors' code
(github.com/google-deepmind/neural_networks_chomsky_hierarchy, tasks/ and
experiments/utils.py); each generator's docstring says which task it is and where it
departs.

One layout serves all eight. The paper feeds a model the input string of n tokens, then as
many "empty" tokens as the output has positions, out(n), and reads the output at those
(`make_model_with_empty_targets`; no teacher forcing). out(n) is 1 for the regular tasks
(one label after the string), n for reverse, 2n for duplicate, n + 1 for binary addition
and stack manipulation. Here that is one 'per_token' sequence:

    position   0 .. n-1        n .. n+out(n)-1        .. to T
    inputs     the string      QUERY                  PAD
    targets    0 (unread)      the output             0 (unread)

Token ids: the string's symbols keep the paper's ids (its one-hot indices, 0 .. A-1 for
an alphabet of A); QUERY is A, the paper's own id for its empty output token; PAD (A + 1)
is new, as the paper never pads. Targets are the paper's output classes.

Lengths. The paper draws one length per batch (training: uniform in 1..40; test: every
length in 41..500). The harness compiles one step for one shape, so here each example
draws its own input length n uniformly in [min_length, length] and the sequence is padded
to T = length + out(length) (or further, to the parameter `pad_to`); batches carry each
example's length n + out(n), so no model sees the padding (an attention model masks it),
and it counts in neither loss nor accuracy. The defaults (1..40) are the paper's
training range. Accuracy at a single length L, the
paper's per-length test point, is the eval/accuracy of a task built with
min_length = length = L (its held-out set then holds strings of length L only).

Scoring. loss_mask: the out(n) output positions (the paper's loss counts all of them, the
zero padding after a terminator included). metric_mask: the positions the paper's
accuracy counts (`accuracy_mask`): all output positions, but for binary addition and stack
manipulation only those up to and including the terminator. The harness's eval/accuracy
is the fraction of correct tokens over every scored position of the held-out set, as the
paper's accuracy pools the tokens of a batch; at one length L it is the paper's accuracy
at L. The paper's headline score averages the per-length accuracies over 41..500, which
for the transduction tasks weighs every length equally where one task built over 41..500
weighs each example by its output length. Training loss here is the mean over all loss
positions of a batch (the paper: the mean over positions of one-length batches), so
longer examples weigh more in the transduction tasks.

Baselines: eval/accuracy, the accuracy of the best constant prediction (the majority token
over the held-out set's scored positions), and eval/loss, the cross-entropy of the best
constant distribution (the entropy of the targets over the loss positions), both computed
from the held-out set, so they are exactly what an input-blind predictor scores on it;
and chance/accuracy, 1/K, a uniform guess over the K output classes. The paper quotes a
random accuracy of 50% (20% for cycle navigation and modular arithmetic); the constant
predictor is close to it (short strings skew some label distributions; binary addition
and stack manipulation have 3 output classes, the terminator among them). Solved:
accuracy >= 0.9, the paper's threshold for a model that generalizes.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from archbench.data.registry import register
from archbench.data.spec import Task, TaskSpec, pad_further
from archbench.data.synthetic import held_out_sets

SOLVED = 0.9  # the paper marks a score of at least 90% as generalizing


@dataclasses.dataclass(frozen=True)
class Language:
  """One task of the family: its generator and its sizes (the paper's names).

  sample(key, n [B], length) -> (strings [B, length], outputs [B, out(length)], scored):
  the input strings (read at positions < n), the output sequences (read at positions
  < out(n)) and scored [B], how many leading output positions the accuracy counts (None:
  all out(n)). out(n) = output_scale * n + output_extra.
  """
  name: str
  level: str
  input_size: int    # A: the string's alphabet; QUERY = A, PAD = A + 1
  output_size: int   # K: output classes
  output_scale: int
  output_extra: int
  sample: Callable
  odd_lengths: bool = False  # modular arithmetic: an even length is shortened by one

  def output_length(self, n):
    return self.output_scale * n + self.output_extra

  @property
  def query(self) -> int:
    return self.input_size

  @property
  def pad(self) -> int:
    return self.input_size + 1


# Compiled once per language and shape (not per built task), so that building a task again,
# as planning and tests do, reuses the compiled generator of its held-out set.
@functools.partial(jax.jit, static_argnames=('language', 'batch_size', 'length', 'min_length'))
def batch(language: Language, key: jax.Array, batch_size: int, length: int,
          min_length: int) -> dict[str, jax.Array]:
  """A batch of the layout in the module docstring: inputs, targets, loss_mask and
  metric_mask [B, T], T = length + out(length), and lengths [B], n + out(n)."""
  k_lengths, k_sample = jax.random.split(key)
  n = jax.random.randint(k_lengths, (batch_size,), min_length, length + 1)
  if language.odd_lengths:
    n = n - (n % 2 == 0)
  strings, outputs, scored = language.sample(k_sample, n, length)
  out_n = language.output_length(n)
  scored = out_n if scored is None else scored
  t = jnp.arange(length + language.output_length(length))[None, :]  # [1, T]
  n, out_n, scored = n[:, None], out_n[:, None], scored[:, None]     # [B, 1]
  is_output = (t >= n) & (t < n + out_n)
  string = jnp.take_along_axis(strings, jnp.minimum(t, length - 1), axis=1)
  inputs = jnp.where(t < n, string, jnp.where(is_output, language.query, language.pad))
  output = jnp.take_along_axis(outputs, jnp.clip(t - n, 0, outputs.shape[1] - 1), axis=1)
  return {'inputs': inputs.astype(jnp.int32),
          'targets': jnp.where(is_output, output, 0).astype(jnp.int32),
          'loss_mask': is_output.astype(jnp.float32),
          'metric_mask': (is_output & (t - n < scored)).astype(jnp.float32),
          'lengths': (n + out_n)[:, 0].astype(jnp.int32)}


def constant_baselines(eval_data: dict[str, np.ndarray], num_classes: int) -> dict[str, float]:
  """What an input-blind predictor scores on the held-out set: the majority target's
  share of the scored positions, the entropy of the targets over the loss positions, and
  a uniform guess's accuracy."""
  def counts(mask):
    return np.bincount(eval_data['targets'][mask > 0], minlength=num_classes)
  scored, counted = counts(eval_data['metric_mask']), counts(eval_data['loss_mask'])
  freq = counted[counted > 0] / counted.sum()
  return {'eval/accuracy': float(scored.max() / scored.sum()),
          'eval/loss': float(-np.sum(freq * np.log(freq))),
          'chance/accuracy': 1.0 / num_classes}


def make(language: Language, seed: int, length: int, min_length: int, eval_size: int,
         pad_to: int | None = None) -> Task:
  if not 1 <= min_length <= length:
    raise ValueError(f'{language.name}: need 1 <= min_length <= length, got '
                     f'min_length={min_length}, length={length}')
  generate = functools.partial(batch, language, length=length, min_length=min_length)
  eval_data, val_data = held_out_sets(generate, seed, eval_size)
  spec = TaskSpec(
      name=language.name, kind='per_token', length=length + language.output_length(length),
      vocab_size=language.input_size + 2, num_classes=language.output_size, causal=False,
      metric='eval/accuracy', higher_is_better=True,
      baselines=constant_baselines(eval_data, language.output_size), solved=SOLVED,
      padded=True)
  params = {'length': length, 'min_length': min_length, 'eval_size': eval_size}
  return pad_further(Task(spec, params, generate, eval_data, val_data=val_data), pad_to,
                     language.pad)


def language(name: str, level: str, description: str, *, input_size: int, output_size: int,
             output_length: tuple[int, int], odd_lengths: bool = False):
  """Registers the generator it decorates as the task `name`; `output_length` is
  (scale, extra) of out(n) = scale * n + extra."""
  def wrap(sample):
    lang = Language(name, level, input_size, output_size, *output_length, sample, odd_lengths)

    def make_task(seed: int = 0, length: int = 40, min_length: int = 1,
                  eval_size: int = 1000, pad_to: int | None = None) -> Task:
      return make(lang, seed, length, min_length, eval_size, pad_to)
    make_task.__doc__ = sample.__doc__
    register(name, f'Chomsky hierarchy, {level}: {description} (accuracy)')(make_task)
    return sample
  return wrap


def _positions(length: int) -> jax.Array:
  return jnp.arange(length)[None, :]  # [1, L]


def _bits(key: jax.Array, n: jax.Array, length: int) -> jax.Array:
  """[..., L] uniform bits, the first n [...] of each string; zero beyond them."""
  bits = jax.random.randint(key, (*n.shape, length), 0, 2)
  return jnp.where(_positions(length) < n[..., None], bits, 0)


# ---------------------------------------------------------------------------------------
# Regular.

@language('parity_check', 'regular', 'number of 1s in a binary string mod 2',
          input_size=2, output_size=2, output_length=(0, 1))
def parity_check(key, n, length):
  """Parity check (the paper's ParityCheck, regular): a uniform binary string; the label,
  read after the string, is 1 if it holds an odd number of 1s, else 0."""
  bits = _bits(key, n, length)
  return bits, (jnp.sum(bits, axis=1) % 2)[:, None], None


@language('even_pairs', 'regular', "parity of the number of '01' and '10' pairs",
          input_size=2, output_size=2, output_length=(0, 1))
def even_pairs(key, n, length):
  """Even pairs (the paper's EvenPairs, regular): a uniform binary string; the label is 1
  if the number of unequal neighbours ('01' or '10') is odd, else 0. (It equals first
  bit xor last bit, so it is balanced for n >= 2; a single symbol has no pair: label 0.)"""
  bits = _bits(key, n, length)
  unequal = (bits[:, 1:] != bits[:, :-1]) & (_positions(length - 1) + 1 < n[:, None])
  return bits, (jnp.sum(unequal, axis=1) % 2)[:, None], None


MODULUS = 5  # the paper's
PLUS, MINUS, TIMES = MODULUS, MODULUS + 1, MODULUS + 2  # the paper's ids of + - *


@language('modular_arithmetic', 'regular', 'value of digits joined by + - * mod 5',
          input_size=MODULUS + 4, output_size=MODULUS, output_length=(0, 1), odd_lengths=True)
def modular_arithmetic(key, n, length):
  """Modular arithmetic without brackets (the paper's ModularArithmetic, regular): digits
  0-4 at even positions, operators + - * (uniform) between them, so the length is odd
  (an even length is shortened by one, as in the paper); the label is the value mod 5
  under the usual precedence (products first). Input ids are the paper's: digits 0-4,
  + 5, - 6, * 7, and 8, its blank, which it never samples.

  Evaluated by a scan over the tokens with the automaton's state (the sum of finished
  terms, the signed product of the current term), all mod 5. The authors' int32 product
  of a term can wrap around past 15 factors of 4; this one is exact.
  """
  b = n.shape[0]
  k_digits, k_ops = jax.random.split(key)
  digits = jax.random.randint(k_digits, (b, length), 0, MODULUS)
  ops = jax.random.choice(k_ops, jnp.array([PLUS, TIMES, MINUS]), (b, length))
  tokens = jnp.where(_positions(length) % 2 == 0, digits, ops)

  def step(state, xs):
    total, term = state
    token, active = xs
    digit = active & (token < MODULUS)
    ends_term = active & ((token == PLUS) | (token == MINUS))
    term_after = jnp.where(digit, term * token % MODULUS, term)
    total = jnp.where(ends_term, (total + term) % MODULUS, total)
    term = jnp.where(ends_term, jnp.where(token == PLUS, 1, MODULUS - 1), term_after)
    return (total, term), None

  active = _positions(length) < n[:, None]
  zero = jnp.zeros(b, jnp.int32)
  (total, term), _ = jax.lax.scan(step, (zero, zero + 1), (tokens.T, active.T))
  return tokens, ((total + term) % MODULUS)[:, None], None


CYCLE = 5  # states on the cycle (the paper's)


@language('cycle_navigation', 'regular', 'final position of a walk on a 5-cycle',
          input_size=3, output_size=CYCLE, output_length=(0, 1))
def cycle_navigation(key, n, length):
  """Cycle navigation (the paper's CycleNavigation, regular): uniform moves 0, 1, 2 meaning
  -1, stay, +1 on a cycle of 5 states, starting at 0; the label is the final state, the
  sum of the moves mod 5."""
  moves = jax.random.randint(key, (n.shape[0], length), 0, 3)
  steps = jnp.where(_positions(length) < n[:, None], moves - 1, 0)
  return moves, (jnp.sum(steps, axis=1) % CYCLE)[:, None], None


# ---------------------------------------------------------------------------------------
# Deterministic context-free.

@language('reverse_string', 'deterministic context-free', 'a binary string reversed',
          input_size=2, output_size=2, output_length=(1, 0))
def reverse_string(key, n, length):
  """Reverse string (the paper's ReverseString, DCF): a uniform binary string s_1 .. s_n;
  the n outputs are s_n .. s_1."""
  bits = _bits(key, n, length)
  source = jnp.clip(n[:, None] - 1 - _positions(length), 0, length - 1)
  return bits, jnp.take_along_axis(bits, source, axis=1), None


POP, PUSH_0, PUSH_1 = 2, 3, 4  # the paper's action ids; stack symbols are 0 and 1
TERMINATOR = 2                 # output class ending the result (binary addition too)


@language('stack_manipulation', 'deterministic context-free',
          'a binary stack after POP/PUSH actions, top first',
          input_size=5, output_size=3, output_length=(1, 1))
def stack_manipulation(key, n, length):
  """Stack manipulation (the paper's StackManipulation, DCF): a stack of k uniform bits,
  given bottom to top, then n - k uniform actions POP (2), PUSH 0 (3), PUSH 1 (4), with k
  uniform in 1..n-1 (k = 1 for n = 1); a POP on an empty stack does nothing. The n + 1
  outputs are the final stack top to bottom, the terminator 2, then 0s; the accuracy
  counts up to the terminator, the loss all n + 1.

  The stack is built by a scan over the tokens (the initial bits are pushes too).
  """
  b = n.shape[0]
  k_split, k_bits, k_actions = jax.random.split(key, 3)
  size = jax.random.randint(k_split, (b,), 1, jnp.maximum(n, 2))[:, None]
  bits = jax.random.randint(k_bits, (b, length), 0, 2)
  actions = jax.random.randint(k_actions, (b, length), POP, PUSH_1 + 1)
  tokens = jnp.where(_positions(length) < size, bits, actions)

  rows = jnp.arange(b)

  def step(state, xs):
    stack, top = state  # stack [B, L] bottom first; top [B]: its height
    token, active = xs
    push = active & (token != POP)
    value = (token == 1) | (token == PUSH_1)
    stack = stack.at[rows, top].set(jnp.where(push, value, stack[rows, top]))
    top = top + push - (active & (token == POP) & (top > 0))
    return (stack, top), None

  active = _positions(length) < n[:, None]
  init = (jnp.zeros((b, length), jnp.int32), jnp.zeros(b, jnp.int32))
  (stack, top), _ = jax.lax.scan(step, init, (tokens.T, active.T))
  j, top = _positions(length + 1), top[:, None]
  popped = jnp.take_along_axis(stack, jnp.clip(top - 1 - j, 0, length - 1), axis=1)
  outputs = jnp.where(j < top, popped, jnp.where(j == top, TERMINATOR, 0))
  return tokens, outputs, top[:, 0] + 1


# ---------------------------------------------------------------------------------------
# Context-sensitive.

@language('duplicate_string', 'context-sensitive', 'a binary string written twice',
          input_size=2, output_size=2, output_length=(2, 0))
def duplicate_string(key, n, length):
  """Duplicate string (the paper's DuplicateString, CS): a uniform binary string s; the
  2n outputs are s s."""
  bits = _bits(key, n, length)
  source = _positions(2 * length) % n[:, None]
  return bits, jnp.take_along_axis(bits, source, axis=1), None


PLUS_SIGN = 2  # binary addition's separator


def _nonzero_bits(key: jax.Array, n: jax.Array, length: int) -> jax.Array:
  """[..., L] the first n [...] bits of each string uniform over the 2^n - 1 nonzero
  strings (all zero if n is 0): strings still all zero are drawn again from a fresh key
  until none is left (starting from all zero, so every string is drawn at least once)."""
  def all_zero(bits):
    return ~jnp.any(bits, axis=-1) & (n > 0)

  def redraw(state):
    i, bits = state
    fresh = _bits(jax.random.fold_in(key, i), n, length)
    return i + 1, jnp.where(all_zero(bits)[..., None], fresh, bits)

  start = (0, jnp.zeros((*n.shape, length), jnp.int32))
  return jax.lax.while_loop(lambda s: jnp.any(all_zero(s[1])), redraw, start)[1]


@language('binary_addition', 'context-sensitive', 'sum of two little-endian binary numbers',
          input_size=3, output_size=3, output_length=(1, 1))
def binary_addition(key, n, length):
  """Binary addition (the paper's BinaryAddition, CS): `a + b` with a and b in
  little-endian binary, the + as token 2. For n >= 3, a has k bits (k uniform in 1..n-2)
  and b the other n - 1 - k, each uniform among the nonzero numbers of that many bits
  (written with their leading zeros). The n + 1 outputs are a + b in little-endian binary
  without leading zeros, the terminator 2, then 0s; the accuracy counts up to the
  terminator, the loss all n + 1. As in the paper, a string of n <= 2 tokens is a single
  number, uniform in 0 .. 2^n - 2 (the complement of a nonzero string), and its sum is
  itself (zero written as one 0).

  The sum is vectorised: the carry into bit i is decided by the nearest bit below it where
  a and b agree (both 1 generate a carry, both 0 stop it), found with a cumulative max.
  """
  b = n.shape[0]
  k_split, k_numbers = jax.random.split(key)
  short = (n <= 2)[:, None]
  n_a = jnp.where(short[:, 0], n, jax.random.randint(k_split, (b,), 1, jnp.maximum(n - 1, 2)))
  n_b = jnp.where(short[:, 0], 0, n - 1 - n_a)
  t = _positions(length)
  a, b_bits = _nonzero_bits(k_numbers, jnp.stack([n_a, n_b]), length)  # one draw for both
  a = jnp.where(short & (t < n_a[:, None]), 1 - a, a)
  after_plus = jnp.take_along_axis(b_bits, jnp.maximum(t - n_a[:, None] - 1, 0), axis=1)
  tokens = jnp.where(t < n_a[:, None], a,
                     jnp.where((t == n_a[:, None]) & ~short, PLUS_SIGN, after_plus))

  # Bits 0..L: one more than either number has, for the last carry.
  a, b_bits = (jnp.pad(x, ((0, 0), (0, 1))) for x in (a, b_bits))
  i = _positions(length + 1)
  decided_at = jax.lax.cummax(jnp.where(a == b_bits, i, -1), axis=1)  # last agreeing bit <= i
  carry_out = jnp.take_along_axis(a, jnp.maximum(decided_at, 0), axis=1) & (decided_at >= 0)
  carry_in = jnp.pad(carry_out[:, :-1], ((0, 0), (1, 0)))
  total = a ^ b_bits ^ carry_in
  digits = jnp.maximum(jnp.max(jnp.where(total == 1, i + 1, 0), axis=1), 1)[:, None]
  outputs = jnp.where(i < digits, total, jnp.where(i == digits, TERMINATOR, 0))
  return tokens, outputs, digits[:, 0] + 1
