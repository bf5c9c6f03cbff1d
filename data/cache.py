"""An on-disk cache for datasets that are slow to build on the host (e.g. ListOps trees).

Arrays are stored as one `.npz` per (dataset, config), named by a digest of the config, so
a changed parameter (or a bumped generator version) never reads stale data. Files are
written to a temporary name and renamed, so parallel workers that build the same dataset
at once never see a half-written file. The directory is `$ARCHBENCH_CACHE`, else
`~/.cache/archbench`.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import tempfile
import zipfile
from typing import Any, Callable

import numpy as np

CACHE_ENV = 'ARCHBENCH_CACHE'


def cache_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get(CACHE_ENV) or pathlib.Path.home() / '.cache' / 'archbench')


def cache_path(name: str, config: dict[str, Any]) -> pathlib.Path:
  digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
  return cache_dir() / f'{name}-{digest}.npz'


def cached_arrays(name: str, config: dict[str, Any],
                  build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """`build()`'s arrays, read from the cache when present, else built and stored.

  `config` (JSON-serialisable) must hold everything the arrays depend on, including a
  generator version, since it alone names the file.
  """
  path = cache_path(name, config)
  try:
    with np.load(path) as stored:
      return {k: stored[k] for k in stored.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # missing or unreadable
    pass
  arrays = build()
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  try:
    write_atomically(path, buffer.getvalue())
  except OSError:  # an unwritable cache costs time, not correctness
    pass
  return arrays


def write_atomically(path: pathlib.Path, content: bytes) -> None:
  """Write to a temporary file beside `path`, then rename it into place: concurrent
  writers (processes or threads) may replace each other's file, never tear it."""
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(content)
    os.replace(tmp, path)
  finally:
    pathlib.Path(tmp).unlink(missing_ok=True)  # gone after a successful rename
