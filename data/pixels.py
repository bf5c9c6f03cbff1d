"""Image generation: autoregressive pixel modelling, scored in bits per dimension.

`pixels`: the 8x8 digits bundled with scikit-learn (data/digits.py), each quantised to
`levels` intensities (default 4; 2 binarises) and read as a 64-token raster in row-major
order. `pixels_mnist`: MNIST's 28x28 images the same way (784 tokens, binarised by
default), through TFDS where the dataset is prepared (data/tfds_tasks.py).

A causal per_token task: the vocabulary is the levels 0 .. L-1 plus a start token L;
inputs are [start, p_0, ..., p_{n-2}], targets [p_0, ..., p_{n-1}], so that the model
predicts every pixel from the pixels before it, and the held-out loss in bits
(`eval/bits_per_dim`, TaskSpec.bits_metric) is the number of bits the model needs per
pixel: an image's negative log-likelihood divided by its H * W dimensions.

Quantisation: intensity x in [0, 1] (the digits' 0..16 / 16, MNIST's 0..255 / 256) falls in
level min(floor(x L), L - 1), L equal bins; at L = 2 a pixel is 1 where x >= 1/2 (the
deterministic binarisation, not the stochastic one of Salakhutdinov & Murray 2008, so the
literature's binarised-MNIST likelihoods are not comparable). Images that quantise to the
same pixels are kept once (at L = 2, 1,750 of the 1,797 digits are distinct), so no image
is in two of the train, validation and test splits.

Baselines, each from the training images' counts (add-one smoothed) scored on the test
images: `eval/bits_per_dim` the memoryless model (one distribution of levels for every
pixel), `position/bits_per_dim` a model that knows each pixel's position and nothing else
(a distribution per position: the digits' border is nearly always blank). Solved: at most
the bits of a classical causal context model, a distribution per position and levels of
the pixels to the left and above (blank outside the image), counted on the training images
and smoothed the same way: a network that reads every previous pixel should beat one that
reads two of them. (Without the position, JBIG's kind of template, the four pixels to the
left and above, scores about as the per-position model at 4 levels and worse at 2.)

Samples (the `images` evaluator, Task.image_samples): images drawn from the trained model
are scored by `sample_plausible`, the share of them whose Euclidean distance (intensities
level / (L - 1)) to the nearest training image is at most the 95th percentile of the same
distance for held-out images. It is calibrated: images like the data score 0.95 in
expectation, smudges and noise near 0; the per-position sampler, pixels drawn independently
from each position's counts, is its baseline (`position/sample_plausible`). A model that
copies its training images would pass, so `sample_copied`, the share of samples identical
to a training image, is recorded beside it (held-out images: 0, they are distinct).
"""
from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np

from archbench.data import tfds_tasks
from archbench.data.digits import array_sampler, load_digits_arrays, split_indices
from archbench.data.registry import register
from archbench.data.spec import ImageSamples, Task, TaskSpec, carve

DIGIT_LEVELS = 17     # the digits' intensities are 0..16: more levels add nothing
MNIST_LEVELS = 16     # keeps the context model's table (levels^5 entries) small
PLAUSIBLE_QUANTILE = 0.95
# Nearest-neighbour distances are computed against at most this many training images
# (a fixed subset), calibrated on at most this many held-out ones: MNIST's 54,000 x 10,000
# pairs at 784 dimensions would take minutes; these take about a second.
MAX_REFERENCE, MAX_CALIBRATION = 10_000, 1_000
BASELINE_SAMPLES = 1_000  # images the per-position sampler draws for its score


# ---------------------------------------------------------------------------------------
# Pixels to sequences.

def quantise(intensities: np.ndarray, levels: int) -> np.ndarray:
  """Intensities in [0, 1] -> uint8 levels min(floor(x L), L - 1)."""
  return np.minimum(np.floor(np.asarray(intensities, np.float64) * levels),
                    levels - 1).astype(np.uint8)


def distinct(images: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
  """Indices, in order, of the first occurrence of each distinct row of images [N, ...],
  leaving out any row that is also a row of `exclude`."""
  seen = set() if exclude is None else {r.tobytes() for r in _flat(exclude)}
  keep = []
  for i, row in enumerate(_flat(images)):
    key = row.tobytes()
    if key not in seen:
      seen.add(key)
      keep.append(i)
  return np.asarray(keep, np.int64)


def _flat(images: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(images).reshape(len(images), -1)


def sequences(pixels, start: int, xp=np):
  """Pixels [N, n] (uint8 levels) -> the task's batch: inputs [N, n] int32 (start, then
  every pixel but the last), targets [N, n] int32 (the pixels), masks [N, n] of ones (every
  pixel counts). Works on numpy and jax arrays: on device for each training batch, in
  numpy once for the held-out sets."""
  pixels = pixels.astype(xp.int32)
  begin = xp.full((pixels.shape[0], 1), start, xp.int32)
  ones = xp.ones(pixels.shape, xp.float32)
  return {'inputs': xp.concatenate([begin, pixels[:, :-1]], axis=1), 'targets': pixels,
          'loss_mask': ones, 'metric_mask': ones}


# ---------------------------------------------------------------------------------------
# Baselines: what counting gives, in bits per pixel on the test images.

def _bits(probabilities: np.ndarray) -> float:
  return float(-np.mean(np.log2(probabilities)))


def marginal_baselines(train: np.ndarray, test: np.ndarray, levels: int) -> dict[str, float]:
  """The memoryless model: the training pixels' level frequencies (add-one smoothed) for
  every test pixel; its accuracy is the test share of the training's commonest level.
  train, test: [N, n] levels."""
  counts = np.bincount(train.ravel(), minlength=levels) + 1.0
  p = counts / counts.sum()
  bits = _bits(p[test.ravel()])
  return {'eval/bits_per_dim': bits, 'eval/loss': bits * math.log(2),
          'eval/accuracy': float(np.mean(test == np.argmax(counts)))}


def position_counts(train: np.ndarray, levels: int) -> np.ndarray:
  """[n, L] the training images' count of each level at each position, add-one smoothed."""
  n = train.shape[1]
  counts = np.zeros((n, levels))
  np.add.at(counts, (np.broadcast_to(np.arange(n), train.shape), train), 1.0)
  return counts + 1.0


def position_baselines(train: np.ndarray, test: np.ndarray, levels: int) -> dict[str, float]:
  """The model that knows each pixel's position only: per position, the training images'
  level frequencies (add-one smoothed); accuracy: the commonest level per position."""
  counts = position_counts(train, levels)
  p = counts / counts.sum(axis=1, keepdims=True)
  bits = _bits(np.take_along_axis(p.T, test, axis=0))  # p[position, level] per test pixel
  return {'position/bits_per_dim': bits, 'position/loss': bits * math.log(2),
          'position/accuracy': float(np.mean(test == np.argmax(counts, axis=1)))}


def contexts(images: np.ndarray, levels: int) -> np.ndarray:
  """images [N, H, W] levels -> [N, H, W] the index of each pixel's causal context: its
  position, the level of the pixel to its left and of the pixel above it (0, blank,
  outside the image), as (position * L + left) * L + above."""
  h, w = images.shape[1:]
  padded = np.pad(images.astype(np.int64), ((0, 0), (1, 0), (1, 0)))  # [N, H + 1, W + 1]
  left, above = padded[:, 1:, :w], padded[:, :h, 1:]
  position = np.arange(h * w).reshape(h, w)
  return (position * levels + left) * levels + above


def context_bits(train: np.ndarray, test: np.ndarray, levels: int) -> float:
  """Bits per pixel on the test images [N, H, W] of the classical context model counted
  on the training images [N, H, W]: a distribution of levels per context (`contexts`),
  add-one smoothed. The solved threshold: it beats the per-position model (at 4 levels,
  0.96 bits against 1.15 on the digits), and a network that reads every previous pixel
  should beat two of them."""
  size = train.shape[1] * train.shape[2] * levels ** 2
  table = np.bincount((contexts(train, levels) * levels + train).ravel(),
                      minlength=size * levels).reshape(size, levels) + 1.0
  p = table / table.sum(axis=1, keepdims=True)
  return _bits(p[contexts(test, levels).ravel(), test.ravel()])


# ---------------------------------------------------------------------------------------
# Scoring samples.

def nearest_distances(x: np.ndarray, reference: np.ndarray, chunk: int = 256) -> np.ndarray:
  """[N] the Euclidean distance from each row of x [N, n] to its nearest row of reference
  [M, n] (float arrays), in chunks of rows, so memory stays at chunk x M."""
  ref_sq = np.sum(reference * reference, axis=1)
  out = np.empty(len(x))
  for i in range(0, len(x), chunk):
    block = x[i:i + chunk]
    d2 = np.sum(block * block, axis=1)[:, None] + ref_sq[None, :] - 2.0 * block @ reference.T
    out[i:i + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
  return out


class Plausibility:
  """Task.image_samples.score: `sample_plausible` and `sample_copied` (module docstring).

  Built from the training and held-out pixels [N, n]; the reference subset and the
  threshold are fixed by the data (the first MAX_REFERENCE of a permutation seeded by 0, and
  the first MAX_CALIBRATION held-out images)."""

  def __init__(self, train: np.ndarray, held_out: np.ndarray, levels: int):
    self.levels = levels
    keep = np.sort(np.random.RandomState(0).permutation(len(train))[:MAX_REFERENCE])
    self.reference = self._intensities(train[keep])
    self.train_rows = {r.tobytes() for r in _flat(train.astype(np.uint8))}
    calibration = nearest_distances(self._intensities(held_out[:MAX_CALIBRATION]),
                                    self.reference)
    self.threshold = float(np.quantile(calibration, PLAUSIBLE_QUANTILE))

  def _intensities(self, pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pixels, np.float64) / (self.levels - 1)

  def __call__(self, samples: np.ndarray) -> dict[str, float]:
    samples = np.asarray(samples)
    near = nearest_distances(self._intensities(samples), self.reference) <= self.threshold
    copied = [r.tobytes() in self.train_rows for r in _flat(samples.astype(np.uint8))]
    return {'sample_plausible': float(np.mean(near)), 'sample_copied': float(np.mean(copied))}


def position_samples(train: np.ndarray, levels: int, count: int, seed: int = 0) -> np.ndarray:
  """[count, n] images whose pixels are drawn independently from each position's training
  frequencies (`position_counts`): the per-position sampler."""
  counts = position_counts(train, levels)
  cumulative = np.cumsum(counts / counts.sum(axis=1, keepdims=True), axis=1)  # [n, L]
  u = np.random.RandomState(seed).uniform(size=(count, train.shape[1], 1))
  return np.minimum(np.sum(u > cumulative[None], axis=2), levels - 1).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# The tasks.

def _spec(name: str, shape: tuple[int, int], levels: int, baselines: dict[str, float],
          solved: float) -> TaskSpec:
  return TaskSpec(name=name, kind='per_token', length=shape[0] * shape[1],
                  vocab_size=levels + 1, num_classes=levels, causal=True,
                  metric='eval/bits_per_dim', higher_is_better=False, baselines=baselines,
                  solved=solved, bits_metric='bits_per_dim')


def pixel_task(name: str, params: dict, shape: tuple[int, int], levels: int,
               train: np.ndarray, val: np.ndarray, test: np.ndarray) -> Task:
  """The generation task on quantised images [N, H, W] (uint8 levels) of each split:
  training batches drawn on device from `train`, the baselines and the solved threshold
  counted from it, scored on `test`."""
  flat = {split: _flat(images) for split, images in
          (('train', train), ('val', val), ('test', test))}
  score = Plausibility(flat['train'], flat['test'], levels)
  position = position_samples(flat['train'], levels, BASELINE_SAMPLES)
  memoryless = np.random.RandomState(0).choice(
      levels, size=position.shape, p=np.bincount(flat['train'].ravel(), minlength=levels)
      / flat['train'].size).astype(np.uint8)
  baselines = {
      **marginal_baselines(flat['train'], flat['test'], levels),
      **position_baselines(flat['train'], flat['test'], levels),
      'eval/sample_plausible': score(memoryless)['sample_plausible'],
      'position/sample_plausible': score(position)['sample_plausible'],
  }
  spec = _spec(name, shape, levels, baselines, context_bits(train, test, levels))
  start = levels
  sample = array_sampler({'pixels': flat['train']},
                         lambda batch: sequences(batch['pixels'], start, jnp))
  return Task(spec, params, sample, sequences(flat['test'], start),
              val_data=sequences(flat['val'], start),
              image_samples=ImageSamples(shape, levels, score))


def _check_levels(name: str, levels: int, most: int) -> None:
  if not 2 <= levels <= most:
    raise ValueError(f'{name}: levels must be between 2 and {most}, got {levels}')


@register('pixels', 'image generation: the 8x8 digits quantised to L levels, pixel by pixel '
          '(bits/dim)')
def make_pixels(seed: int = 0, levels: int = 4, test_fraction: float = 0.2,
                val_fraction: float = 0.1, split_seed: int = 0) -> Task:
  """The distinct quantised digits split by `split_seed` as `digits` splits them (the
  fractions are of the distinct images): the same images for every run and architecture.

  Headline: held-out bits per pixel, lower is better; baselines: the memoryless and the
  per-position models; solved at the four-pixel context model's bits (module docstring).
  """
  del seed  # the split is fixed by split_seed; training randomness comes from the harness
  _check_levels('pixels', levels, DIGIT_LEVELS)
  if not (0 < test_fraction < 1 and 0 < val_fraction and test_fraction + val_fraction < 1):
    raise ValueError('pixels: need 0 < test_fraction, 0 < val_fraction and '
                     f'test_fraction + val_fraction < 1, got {test_fraction}, {val_fraction}')
  images = quantise(load_digits_arrays()[0][..., 0], levels)  # [N, 8, 8]
  images = images[distinct(images)]
  train, test = split_indices(len(images), test_fraction, split_seed)
  train, val = carve(train, int(round(len(images) * val_fraction)), split_seed)
  params = {'levels': levels, 'test_fraction': test_fraction, 'val_fraction': val_fraction,
            'split_seed': split_seed}
  return pixel_task('pixels', params, (8, 8), levels, images[train], images[val],
                    images[test])


def pixels_mnist_spec(levels: int = 2, eval_size: int | None = None,
                      val_fraction: float = tfds_tasks.VAL_FRACTION) -> TaskSpec:
  """The spec without the data: its baselines and its solved threshold come from the data
  (empty, and NaN, here)."""
  _check_levels('pixels_mnist', levels, MNIST_LEVELS)
  tfds_tasks.check_eval_size('pixels_mnist', eval_size)
  tfds_tasks.check_val_fraction('pixels_mnist', val_fraction)
  return _spec('pixels_mnist', (28, 28), levels, {}, math.nan)


@register('pixels_mnist', 'image generation: MNIST (TFDS) binarised, 784 pixels one by one '
          '(bits/dim)', spec=pixels_mnist_spec)
def make_pixels_mnist(seed: int = 0, levels: int = 2, eval_size: int | None = None,
                      val_fraction: float = tfds_tasks.VAL_FRACTION) -> Task:
  """TFDS's train split (its distinct images) trains, less `val_fraction` of it for
  validation; its test split (or `eval_size` of it), less any image also in the train
  split, is the test set."""
  del seed
  pixels_mnist_spec(levels, eval_size, val_fraction)
  quantised = functools.partial(_mnist_levels, levels=levels)
  train = quantised(tfds_tasks._images('mnist', 'train')[0])
  test = quantised(tfds_tasks._test_images('mnist', eval_size)[0])
  train = train[distinct(train)]
  test = test[distinct(test, exclude=train)]
  rest, val = carve(np.arange(len(train)), max(1, int(round(len(train) * val_fraction))), 0)
  params = {'tfds': tfds_tasks.DATASETS['mnist'].full_name, 'levels': levels,
            'eval_size': eval_size, 'val_fraction': val_fraction}
  return pixel_task('pixels_mnist', params, (28, 28), levels, train[rest], train[val], test)


def _mnist_levels(images: np.ndarray, levels: int) -> np.ndarray:
  """uint8 [N, 28, 28, 1] -> [N, 28, 28] levels of the intensities x / 256."""
  return quantise(images[..., 0] / 256.0, levels)
