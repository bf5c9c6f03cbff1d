"""The 8x8 handwritten digits bundled with scikit-learn (UCI ML digits): real data, offline.

1797 images, 10 classes. The train/test split is fixed by `split_seed` (not the run's
seed), so every run and architecture is scored on the same held-out images. `pdigits` is
the same task with the pixels in a fixed shuffled order (as permuted MNIST).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from data.registry import register
from data.spec import Task, TaskSpec

DIGITS_SHAPE = (8, 8, 1)


@functools.cache
def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
  """images [N, 8, 8, 1] float32 in [0, 1]; labels [N] int32."""
  from sklearn.datasets import load_digits  # bundled with scikit-learn, no download
  bunch = load_digits()
  images = (bunch.images / 16.0).astype(np.float32)[..., None]
  return images, bunch.target.astype(np.int32)


def split_indices(n: int, test_fraction: float, split_seed: int):
  """Disjoint (train, test) index arrays from a seeded permutation."""
  order = np.random.RandomState(split_seed).permutation(n)
  n_test = int(round(n * test_fraction))
  return np.sort(order[n_test:]), np.sort(order[:n_test])


def array_sampler(arrays: dict[str, np.ndarray]):
  """A jittable (key, batch_size) -> batch that draws examples uniformly (with
  replacement) from arrays held on device: no host I/O inside the training loop."""
  on_device = {k: jnp.asarray(v) for k, v in arrays.items()}
  n = len(next(iter(arrays.values())))

  def sample(key, batch_size):
    idx = jax.random.randint(key, (batch_size,), 0, n)
    return {k: v[idx] for k, v in on_device.items()}
  return sample


def class_baselines(train_labels: np.ndarray, test_labels: np.ndarray,
                    num_classes: int) -> dict[str, float]:
  """What an input-blind classifier reaches on a fixed split: the accuracy of the test
  set's majority class, and the cross-entropy of predicting the training class
  frequencies (the chance-level loss)."""
  majority = np.bincount(test_labels, minlength=num_classes).max() / len(test_labels)
  prior = np.bincount(train_labels, minlength=num_classes) / len(train_labels)
  prior_loss = -np.mean(np.log(prior[test_labels]))
  return {'eval/accuracy': float(majority), 'eval/loss': float(prior_loss)}


def _image_task(name: str, images: np.ndarray, labels: np.ndarray, test_fraction: float,
                split_seed: int, params: dict) -> Task:
  """A 10-class image task on the digits' train/test split (fixed by split_seed)."""
  train, test = split_indices(len(labels), test_fraction, split_seed)
  spec = TaskSpec(
      name=name, kind='classify', length=int(np.prod(DIGITS_SHAPE[:2])),
      image_shape=DIGITS_SHAPE, num_classes=10,
      metric='eval/accuracy', higher_is_better=True,
      baselines=class_baselines(labels[train], labels[test], 10), solved=0.95)
  return Task(spec, {'test_fraction': test_fraction, 'split_seed': split_seed, **params},
              array_sampler({'inputs': images[train], 'targets': labels[train]}),
              {'inputs': images[test], 'targets': labels[test]})


@register('digits', '8x8 handwritten digits (scikit-learn), 10 classes, accuracy')
def make_digits(seed: int = 0, test_fraction: float = 0.2, split_seed: int = 0) -> Task:
  del seed  # the split is fixed by split_seed; training randomness comes from the harness
  images, labels = load_digits_arrays()
  return _image_task('digits', images, labels, test_fraction, split_seed, {})


def pixel_permutation(permutation_seed: int) -> np.ndarray:
  """[64] the fixed order in which pdigits lays out the row-major pixels."""
  return np.random.RandomState(permutation_seed).permutation(int(np.prod(DIGITS_SHAPE)))


@register('pdigits', 'digits with a fixed permutation of the 64 pixels (as permuted MNIST)')
def make_pdigits(seed: int = 0, test_fraction: float = 0.2, split_seed: int = 0,
                 permutation_seed: int = 0) -> Task:
  """Permuted digits: every image's pixels shuffled by one permutation fixed by
  `permutation_seed` (not the run's seed), on the same split as digits.

  A sequence model reads the permuted pixels as a 64-step sequence, so dependencies span
  the whole sequence instead of neighbouring steps; for the CNN and ViT the permutation
  destroys spatial locality, which is the point: their image priors no longer help.
  """
  del seed
  images, labels = load_digits_arrays()
  n = len(labels)
  # [N, 8, 8, 1] -> [N, 64] row-major -> permuted -> [N, 8, 8, 1]
  flat = images.reshape(n, -1)[:, pixel_permutation(permutation_seed)]
  return _image_task('pdigits', flat.reshape(images.shape), labels, test_fraction, split_seed,
                     {'permutation_seed': permutation_seed})
