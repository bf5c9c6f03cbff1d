"""Translation-like transduction: numbers written in digits -> their English words.

    3 0 1 4 5 -> thirty thousand one hundred forty five <eos>

Real structure at small scale: alignment (each digit maps to a word, a word pair, or
nothing), reordering ("1 4" -> "fourteen": the units word carries the tens digit),
insertions ("hundred", "thousand") and variable-length output. Every number in
[0, max_value) is one example; the test numbers are a fixed seeded subset, disjoint from
training's by construction.
"""
from __future__ import annotations

import functools

import numpy as np

from archbench.data.digits import array_sampler
from archbench.data.registry import register
from archbench.data.spec import EOS, PAD, Task, TaskSpec, carve, pad_further, real_lengths

ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine',
        'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen',
        'seventeen', 'eighteen', 'nineteen']
TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety']
WORDS = ONES + TENS[2:] + ['hundred', 'thousand']
# One shared vocabulary: reserved ids, then the ten digits, then the words.
DIGIT_BASE = EOS + 1
WORD_BASE = DIGIT_BASE + 10
VOCAB_SIZE = WORD_BASE + len(WORDS)
WORD_ID = {w: WORD_BASE + i for i, w in enumerate(WORDS)}
MAX_VALUE_LIMIT = 1_000_000  # the words above cover numbers below a million


def number_words(n: int) -> list[str]:
  """English words for 0 <= n < 1e6, American style without 'and'."""
  if not 0 <= n < MAX_VALUE_LIMIT:
    raise ValueError(f'number out of range [0, {MAX_VALUE_LIMIT}): {n}')
  if n == 0:
    return ['zero']

  def below_thousand(x: int) -> list[str]:
    words = [ONES[x // 100], 'hundred'] if x >= 100 else []
    x %= 100
    if 0 < x < 20:
      words.append(ONES[x])
    elif x >= 20:
      words += [TENS[x // 10]] + ([ONES[x % 10]] if x % 10 else [])
    return words
  thousands, rest = divmod(n, 1000)
  return (below_thousand(thousands) + ['thousand'] if thousands else []) + below_thousand(rest)


@functools.cache
def number_pairs(max_value: int) -> tuple[np.ndarray, np.ndarray]:
  """(sources [N, S], targets [N, T]) for every n < max_value, padded with PAD; targets end
  with EOS. S is the digit count of max_value - 1; T the longest word count + 1."""
  source_len = len(str(max_value - 1))
  phrases = [[WORD_ID[w] for w in number_words(n)] + [EOS] for n in range(max_value)]
  target_len = max(map(len, phrases))
  sources = np.full((max_value, source_len), PAD, np.int32)
  targets = np.full((max_value, target_len), PAD, np.int32)
  for n, phrase in enumerate(phrases):
    digits = [DIGIT_BASE + int(c) for c in str(n)]
    sources[n, :len(digits)] = digits
    targets[n, :len(phrase)] = phrase
  return sources, targets


def positional_majority(train_targets: np.ndarray, test_targets: np.ndarray):
  """Memoryless baseline: predict, at each target position, the token most frequent there
  in training. Returns (token accuracy on non-PAD test positions, exact-match rate)."""
  guess = np.array([np.bincount(col, minlength=VOCAB_SIZE).argmax() for col in train_targets.T])
  mask = test_targets != PAD
  hits = (test_targets == guess) | ~mask
  return float(((test_targets == guess) & mask).sum() / mask.sum()), float(hits.all(1).mean())


@register('translate', 'numbers in digits -> English words (seq2seq, greedy exact match)')
def make_translate(seed: int = 0, max_value: int = 100_000, test_size: int = 1000,
                   val_size: int | None = None, split_seed: int = 0,
                   pad_to: int | None = None) -> Task:
  """Every n < max_value is an example; `test_size` of them, chosen by `split_seed`, are
  the test set and another `val_size` (None: as many) the validation set. The run's seed does not change the split. Sources are padded at the end to
  the longest number's digit count (or further, to `pad_to`); batches carry each
  source's length, so no model sees the padding."""
  del seed
  val_size = test_size if val_size is None else val_size
  if (not 10 < max_value <= MAX_VALUE_LIMIT or not 0 < test_size
      or not 0 < val_size or test_size + val_size >= max_value // 2):
    raise ValueError(f'translate: need 10 < max_value <= {MAX_VALUE_LIMIT}, test_size and '
                     f'val_size > 0 and test_size + val_size < max_value/2, got '
                     f'{max_value}, {test_size}, {val_size}')
  sources, targets = number_pairs(max_value)
  order = np.random.RandomState(split_seed).permutation(max_value)
  test, train = np.sort(order[:test_size]), np.sort(order[test_size:])
  train, val = carve(train, val_size, split_seed)
  token_acc, exact = positional_majority(targets[train], targets[test])

  def with_masks(src, tgt):
    mask = (tgt != PAD).astype(np.float32)
    return {'inputs': src, 'targets': tgt, 'loss_mask': mask, 'metric_mask': mask,
            'lengths': real_lengths(src, PAD)}
  spec = TaskSpec(
      name='translate', kind='seq2seq', length=sources.shape[1],
      target_length=targets.shape[1], vocab_size=VOCAB_SIZE, num_classes=VOCAB_SIZE,
      causal=True, metric='eval/exact_match', higher_is_better=True,
      baselines={'eval/exact_match': exact, 'eval/token_accuracy': token_acc,
                 'eval/accuracy': token_acc},
      solved=0.95, padded=True)
  task = Task(spec, {'max_value': max_value, 'test_size': test_size, 'val_size': val_size,
                     'split_seed': split_seed},
              array_sampler(with_masks(sources[train], targets[train])),
              with_masks(sources[test], targets[test]),
              val_data=with_masks(sources[val], targets[val]))
  return pad_further(task, pad_to, PAD)
