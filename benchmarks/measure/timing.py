"""One timer for everything: compile apart, warm-up skipped, windows ended by
`block_until_ready`, medians over windows; and the device peak used for MFU."""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import re
import statistics
import time

import jax
import jax.numpy as jnp

from archbench.data import cache as data_cache


# JAX's persistent compilation cache: a second run of the same suite loads its compiled
# programs from disk instead of compiling them again. The key covers the program, the
# compile options, the device and the jax/jaxlib versions, so a stale hit is not possible.
COMPILE_CACHE_ENV = 'ARCHBENCH_COMPILE_CACHE'  # a directory, or 'off'
COMPILE_CACHE_MAX_BYTES = 4 << 30  # JAX evicts the least recently used entries beyond this


def default_compile_cache() -> str:
  """$ARCHBENCH_COMPILE_CACHE, else $XDG_CACHE_HOME/archbench/jax (~/.cache/...)."""
  if os.environ.get(COMPILE_CACHE_ENV):
    return os.environ[COMPILE_CACHE_ENV]
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'archbench', 'jax')


def use_compile_cache(directory: str | None) -> str | None:
  """Point JAX's persistent compilation cache at `directory` ('off' or None: no cache), in
  this process and, through JAX's own environment variables, in the worker processes it
  starts. Every program is cached, however fast it compiled: a suite is many small
  programs. Returns the directory in use."""
  off = directory in (None, '', 'off')
  directory = None if off else os.path.abspath(os.path.expanduser(directory))
  settings = {'jax_enable_compilation_cache': not off}
  if not off:
    settings.update(jax_compilation_cache_dir=directory,
                    jax_persistent_cache_min_compile_time_secs=0.0,
                    jax_compilation_cache_max_size=COMPILE_CACHE_MAX_BYTES)
  for name, value in settings.items():
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
  os.environ[COMPILE_CACHE_ENV] = directory or 'off'
  return directory


# XLA options that trade run-time speed for ~4x faster compilation on CPU: for code that
# runs once (initialisation) or suites that only check that everything runs (smoke).
FAST_COMPILE = {'xla_backend_optimization_level': 0}


def compile_ahead(fn, *args, fast: bool = False):
  """Ahead-of-time `jit(fn).lower(...).compile()`: (compiled, seconds)."""
  start = time.perf_counter()
  lowered = jax.jit(fn).lower(*args)
  try:
    compiled = lowered.compile(FAST_COMPILE) if fast else lowered.compile()
  except Exception:  # a backend without that option: compile normally
    compiled = lowered.compile()
  return compiled, time.perf_counter() - start


@dataclasses.dataclass
class Chrono:
  """Per-step times from windows of `steps` steps, each ended by `block_until_ready`.

  The first `warmup_windows` windows are dropped (caches, allocator, page faults); with no
  later window, the warm-up one is used rather than nothing.
  """
  warmup_windows: int = 1
  windows: list[tuple[float, int]] = dataclasses.field(default_factory=list)

  def time(self, fn, *args, steps: int = 1):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    self.windows.append((time.perf_counter() - start, steps))
    return out

  def _per_step(self) -> list[float]:
    timed = self.windows[self.warmup_windows:] or self.windows
    return [seconds / steps for seconds, steps in timed]

  @property
  def median_s(self) -> float | None:
    per_step = self._per_step()
    return statistics.median(per_step) if per_step else None

  @property
  def spread_s(self) -> tuple[float, float] | None:
    """(min, max) per-step time over the timed windows."""
    per_step = self._per_step()
    return (min(per_step), max(per_step)) if per_step else None

  @property
  def timed_windows(self) -> int:
    return len(self._per_step())


# Dense float32 peaks (FLOP/s) of one chip of known accelerators, matched on
# `device.device_kind` as whole words ('L4' is not an 'L40S'). float32 matmuls on these
# run as TF32 / bf16-pass by JAX's default precision.
ACCELERATOR_PEAK_FLOPS = {
    'H200': 494.5e12, 'H100': 494.5e12, 'A100': 156e12, 'L40S': 183e12, 'L4': 60e12,
    'A10': 62.5e12, 'V100': 15.7e12, 'T4': 8.1e12, 'TPU v6': 918e12, 'TPU v5p': 459e12,
    'TPU v5 lite': 197e12, 'TPU v5e': 197e12, 'TPU v4': 275e12, 'TPU v3': 123e12,
}


def accelerator_peak(device_kind: str) -> tuple[float, str] | None:
  """(peak FLOP/s of one chip, the table's key) for a device kind, or None if unknown."""
  for kind, peak in ACCELERATOR_PEAK_FLOPS.items():
    if re.search(rf'(?<![\w]){re.escape(kind)}(?![\w])', device_kind, re.IGNORECASE):
      return peak, kind
  return None


def measure_matmul_flops(n: int = 2048, repeats: int = 5) -> float:
  """Achieved float32 FLOP/s of an n^3 matmul on the default device (median of repeats)."""
  a = jnp.ones((n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul).lower(a, a).compile()
  jax.block_until_ready(matmul(a, a))
  chrono = Chrono(warmup_windows=1)
  for _ in range(repeats + 1):
    chrono.time(matmul, a, a)
  return 2.0 * n**3 / chrono.median_s


@functools.cache
def device_peak_flops() -> tuple[float | None, str]:
  """(peak FLOP/s of the one device a cell runs on, where it came from). Accelerators
  from the table; a CPU is measured once per machine with a large matmul and cached on
  disk."""
  device = jax.devices()[0]
  if device.platform != 'cpu':
    found = accelerator_peak(device.device_kind)
    return (found[0], f'table:{found[1]}') if found else (None, 'unknown accelerator')
  key = f'{platform.node()}-{platform.machine()}-{os.cpu_count()}-{jax.__version__}'
  cache_file = data_cache.cache_dir() / 'cpu_peak.json'
  try:
    cached = json.loads(cache_file.read_text())
  except (OSError, ValueError):
    cached = {}
  if key not in cached:
    cached[key] = measure_matmul_flops()
    try:
      data_cache.write_atomically(cache_file, json.dumps(cached).encode())
    except OSError:
      pass  # read-only home: measure again next time
  return cached[key], 'measured:matmul2048'
