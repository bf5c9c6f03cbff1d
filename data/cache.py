"""An on-disk cache for datasets that are slow to build on the host (e.g. ListOps trees).

Arrays are stored as one `.npz` per (dataset, config), named by a digest of the config, so
a changed parameter (or a bumped generator version) never reads stale data. Files are
written to a temporary name and renamed, so parallel workers that build the same dataset
at once never see a half-written file (common/files.py, which also names the directory:
`$ARCHBENCH_CACHE`, else `~/.cache/archbench`).
"""
from __future__ import annotations

import hashlib
import io
import json
import pathlib
import zipfile
from typing import Any, Callable

import numpy as np

from archbench.common import files

CACHE_ENV = files.CACHE_ENV  # the variable that moves the directory (tests point it at tmp)


def cache_path(name: str, config: dict[str, Any]) -> pathlib.Path:
  digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
  return files.cache_dir() / f'{name}-{digest}.npz'


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
    files.write_atomically(path, buffer.getvalue())
  except OSError:  # an unwritable cache costs time, not correctness
    pass
  return arrays

