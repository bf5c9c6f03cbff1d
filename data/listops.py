"""ListOps (Nangia & Bowman 2018, as generated for Long Range Arena, Tay et al. 2021).

Nested prefix expressions over the digits 0-9,

    [MAX 2 9 [MIN 4 7 ] 0 ]  ->  9

with the operators MIN, MAX, MED (median) and SM (sum modulo 10); the label is the
expression's value (10 classes). A model must parse the hierarchy: the value of an
argument list depends on tokens arbitrarily far apart.

Generation follows LRA's `generate_tree` (lra_benchmarks/data/listops.py):
  * a node at depth d < max_depth (the root has depth 1, a digit leaf counts as a level)
    is an operator with probability 0.25, else a uniform digit; at max_depth it is a
    digit, so brackets nest at most max_depth - 1 deep;
  * an operator takes a uniform number of arguments in [2, max_args], each a subtree;
  * MED is LRA's `int(np.median(args))`: for an even count the mean of the two middle
    values, truncated (all values are >= 0, so it is floor((a + b) / 2));
  * a tree is kept if its token count (digits, operators and `]`) lies in the window
    [min_length, max_length] (LRA's flags are exclusive bounds: its 500 < n < 2000 is
    min_length=501, max_length=1999 here), and the dataset holds distinct expressions.
`]` stays a token, as in LRA's input pipeline since c209b2a (2021-03-04), which renames it
`X` (its earlier tokenizer dropped it, which makes expressions ambiguous); LRA's cosmetic
parentheses, which that pipeline strips, are not emitted. Token ids: PAD 0, digit d -> 1 + d,
the four operators 11-14, `]` 15; sequences are padded at the end to max_length.

Departures from LRA, none of which changes which expressions are drawn or how often
(benchmarks/reproductions/_lra_stats.py measures both generators at LRA's settings: lengths,
labels and depths agree within sampling noise):
  * LRA numbers its 15 tokens in arbitrary (set) order and adds an unused out-of-vocabulary
    id (vocabulary 17, here 16);
  * LRA pads to 2000, here to max_length (1999 at its settings): one padding position
    fewer, which LRA's Transformer masks anyway;
  * random numbers are drawn in another order (an operator before its arguments), so a
    seed does not give LRA's expressions; nothing does, since LRA's generator is unseeded.

Trees are built on the host (Python recursion), so a dataset is generated once per
configuration and cached on disk (data/cache.py); `data_seed` fixes the expressions and
`split_seed` the held-out subset, never the run's seed, so every run and architecture is
scored on the same test expressions (as for digits).
"""
from __future__ import annotations

import random

import numpy as np

from archbench.data.cache import cached_arrays
from archbench.data.digits import array_sampler, class_baselines, split_indices
from archbench.data.registry import register
from archbench.data.spec import Task, TaskSpec, carve, pad_further, real_lengths

OPERATORS = ('[MIN', '[MAX', '[MED', '[SM')
PAD, DIGIT_BASE, OPERATOR_BASE = 0, 1, 11
CLOSE = OPERATOR_BASE + len(OPERATORS)  # the token `]`
VOCAB_SIZE = CLOSE + 1
TOKENS = ('<pad>',) + tuple(str(d) for d in range(10)) + OPERATORS + (']',)
VALUE_P = 0.25  # LRA: probability that a node shallower than max_depth is an operator
GENERATOR_VERSION = 1  # bump when generation changes, so cached datasets are rebuilt


def apply_operator(op: str, args: list[int]) -> int:
  if op == '[MIN':
    return min(args)
  if op == '[MAX':
    return max(args)
  if op == '[MED':  # LRA's int(np.median(args)), in integers
    s, m = sorted(args), len(args) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) // 2
  if op == '[SM':
    return sum(args) % 10
  raise ValueError(f'unknown operator {op!r}')


class _TooLong(Exception):
  """A tree outgrew max_length: it would be rejected, so stop building it (trees are a
  supercritical branching process, and most of the time would go into huge rejects)."""


def _tree(rng: random.Random, depth: int, max_depth: int, max_args: int, max_length: int,
          tokens: list[int]) -> int:
  """Appends one random tree's tokens to `tokens`; returns its value."""
  if depth < max_depth and rng.random() <= VALUE_P:
    op = rng.randrange(len(OPERATORS))
    tokens.append(OPERATOR_BASE + op)
    args = [_tree(rng, depth + 1, max_depth, max_args, max_length, tokens)
            for _ in range(rng.randint(2, max_args))]
    tokens.append(CLOSE)
    value = apply_operator(OPERATORS[op], args)
  else:
    value = rng.randrange(10)
    tokens.append(DIGIT_BASE + value)
  if len(tokens) > max_length:
    raise _TooLong
  return value


def generate(num_examples: int, max_depth: int, max_args: int, min_length: int,
             max_length: int, data_seed: int) -> dict[str, np.ndarray]:
  """`num_examples` distinct expressions: tokens [N, max_length] int8 (PAD-padded at the
  end) and labels [N] int8, in order of generation."""
  rng = random.Random(data_seed)
  seen: set[bytes] = set()
  tokens = np.full((num_examples, max_length), PAD, np.int8)
  labels = np.zeros(num_examples, np.int8)
  max_attempts = 1000 * num_examples + 100_000
  for _ in range(max_attempts):
    expression: list[int] = []
    try:
      value = _tree(rng, 1, max_depth, max_args, max_length, expression)
    except _TooLong:
      continue
    key = bytes(expression)
    if len(expression) < min_length or key in seen:
      continue
    tokens[len(seen), :len(expression)] = expression
    labels[len(seen)] = value
    seen.add(key)
    if len(seen) == num_examples:
      return {'tokens': tokens, 'labels': labels}
  raise ValueError(f'listops: found only {len(seen)} distinct expressions of {min_length}-'
                   f'{max_length} tokens in {max_attempts} trees (max_depth={max_depth}, '
                   f'max_args={max_args}); widen the window or lower num_examples')


def decode(tokens) -> str:
  """Token ids -> the expression as text, padding dropped (for reading examples)."""
  return ' '.join(TOKENS[t] for t in np.asarray(tokens).tolist() if t != PAD)


def root_operator_accuracy(train_tokens: np.ndarray, train_labels: np.ndarray,
                           test_tokens: np.ndarray, test_labels: np.ndarray) -> float:
  """The held-out accuracy of predicting, for each root token (the expression's first,
  its outermost operator), the label most common under it in training: no parsing at all,
  yet about 0.35 (0.368 at LRA's settings; LRA's Transformer scores 0.3637), since MAX and
  MIN of many digits are mostly 9 and 0. A model must beat it to have learned ListOps."""
  def roots(tokens):
    return tokens[np.arange(len(tokens)), np.argmax(tokens != PAD, axis=1)]
  train_roots, test_roots = roots(train_tokens), roots(test_tokens)
  fallback = np.bincount(train_labels, minlength=10).argmax()
  lookup = np.full(VOCAB_SIZE, fallback)
  for root in np.unique(train_roots):
    lookup[root] = np.bincount(train_labels[train_roots == root], minlength=10).argmax()
  return float(np.mean(lookup[test_roots] == test_labels))


def listops_baselines(tokens: np.ndarray, labels: np.ndarray, train: np.ndarray,
                      test: np.ndarray) -> dict[str, float]:
  """The input-blind baselines (majority class, class prior) and the root-operator rule."""
  return {**class_baselines(labels[train], labels[test], 10),
          'root_operator/accuracy': root_operator_accuracy(tokens[train], labels[train],
                                                           tokens[test], labels[test])}


@register('listops', 'ListOps (LRA): value of nested MIN/MAX/MED/SM expressions (accuracy)')
def make_listops(seed: int = 0, max_depth: int = 6, max_args: int = 10, min_length: int = 64,
                 max_length: int = 256, num_examples: int = 10_000, test_fraction: float = 0.1,
                 val_fraction: float = 0.1, data_seed: int = 0, split_seed: int = 0,
                 pad_to: int | None = None) -> Task:
  """Expressions are padded at the end to max_length (or further, to `pad_to`); batches
  carry each expression's length, so no model sees the padding.

  Defaults build in about 2 s (then load from the cache); LRA's task is max_depth=10,
  max_args=10, min_length=501, max_length=1999, num_examples=100_000 (96,000 / 2,000 /
  2,000 train / validation / test there; here 80/10/10 of num_examples by default:
  `val_fraction` of them, out of the training part), which takes a few minutes to generate
  (about 3 ms an expression)."""
  del seed  # the data is fixed by data_seed and split_seed; the run's seed trains
  if not (2 <= max_depth and 2 <= max_args and 1 <= min_length <= max_length
          and 4 <= max_length and 1 <= round(num_examples * test_fraction)
          and 1 <= round(num_examples * val_fraction)
          and round(num_examples * test_fraction) + round(num_examples * val_fraction)
          < num_examples):
    raise ValueError('listops: need max_depth >= 2, max_args >= 2, 1 <= min_length <= '
                     'max_length, max_length >= 4, and test_fraction and val_fraction of '
                     'num_examples that leave all three splits non-empty')
  config = {'num_examples': num_examples, 'max_depth': max_depth, 'max_args': max_args,
            'min_length': min_length, 'max_length': max_length, 'data_seed': data_seed}
  arrays = cached_arrays('listops', {**config, 'version': GENERATOR_VERSION},
                         lambda: generate(**config))
  tokens, labels = arrays['tokens'].astype(np.int32), arrays['labels'].astype(np.int32)
  train, test = split_indices(len(labels), test_fraction, split_seed)
  train, val = carve(train, int(round(num_examples * val_fraction)), split_seed)
  spec = TaskSpec(
      name='listops', kind='classify', length=max_length, vocab_size=VOCAB_SIZE,
      num_classes=10, metric='eval/accuracy', higher_is_better=True,
      baselines=listops_baselines(tokens, labels, train, test), solved=0.95,
      padded=True)
  params = {**config, 'test_fraction': test_fraction, 'val_fraction': val_fraction,
            'split_seed': split_seed}
  lengths = real_lengths(tokens, PAD)
  split = lambda rows: {'inputs': tokens[rows], 'targets': labels[rows], 'lengths': lengths[rows]}
  return pad_further(Task(spec, params, array_sampler(split(train)), split(test),
                          val_data=split(val)), pad_to, PAD)
