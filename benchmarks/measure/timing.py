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

from archbench.benchmarks.core import PRECISIONS
from archbench.common import files


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


# Dense (no sparsity) peaks in FLOP/s of one chip of known accelerators, per precision
# (core.PRECISIONS), matched on `device.device_kind` as whole words ('L4' is not an 'L40S').
#   float32: what JAX's default matmul precision runs float32 matmuls as: TF32 tensor cores
#     on NVIDIA GPUs from Ampere on (FP32 on V100 and T4, which have no TF32), and a single
#     bf16 pass on TPUs, so a TPU's float32 and bfloat16 peaks are the same figure.
#   bfloat16: the BF16 tensor-core / MXU peak. Sources: NVIDIA's datasheets for H100/H200
#     SXM (1,979 TFLOPS with sparsity, so 989.5 dense), A100 (312), L40S (362.05), L4 (242
#     with sparsity: 121), A10 (125); Google's Cloud TPU pages, "peak compute per chip
#     (bf16)" (v6e 918, v5p 459, v5e 197, v4 275, v3 123). V100 (Volta) and T4 (Turing)
#     have no bf16 arithmetic (their 125 and 65 TFLOPS are FP16), so they have no bfloat16
#     peak (None): MFU is left out rather than measured against a unit XLA does not use.
ACCELERATOR_PEAK_FLOPS: dict[str, dict[str, float | None]] = {
    'H200': {'float32': 494.5e12, 'bfloat16': 989.5e12},
    'H100': {'float32': 494.5e12, 'bfloat16': 989.5e12},
    'A100': {'float32': 156e12, 'bfloat16': 312e12},
    'L40S': {'float32': 183e12, 'bfloat16': 362.05e12},
    'L4': {'float32': 60e12, 'bfloat16': 121e12},
    'A10': {'float32': 62.5e12, 'bfloat16': 125e12},
    'V100': {'float32': 15.7e12, 'bfloat16': None},
    'T4': {'float32': 8.1e12, 'bfloat16': None},
    'TPU v6': {'float32': 918e12, 'bfloat16': 918e12},
    'TPU v5p': {'float32': 459e12, 'bfloat16': 459e12},
    'TPU v5 lite': {'float32': 197e12, 'bfloat16': 197e12},
    'TPU v5e': {'float32': 197e12, 'bfloat16': 197e12},
    'TPU v4': {'float32': 275e12, 'bfloat16': 275e12},
    'TPU v3': {'float32': 123e12, 'bfloat16': 123e12},
}


def accelerator_peak(device_kind: str, precision: str = 'float32'
                     ) -> tuple[float | None, str] | None:
  """(peak FLOP/s of one chip at `precision`, the table's key) for a device kind, or None
  if the kind is unknown. The peak itself is None where the chip has no such unit."""
  for kind, peaks in ACCELERATOR_PEAK_FLOPS.items():
    if re.search(rf'(?<![\w]){re.escape(kind)}(?![\w])', device_kind, re.IGNORECASE):
      return peaks[precision], kind
  return None


def measure_matmul_flops(n: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
  """Achieved FLOP/s of an n^3 matmul in `dtype` on the default device (median of
  repeats)."""
  a = jnp.ones((n, n), dtype)
  matmul = jax.jit(jnp.matmul).lower(a, a).compile()
  jax.block_until_ready(matmul(a, a))
  chrono = Chrono(warmup_windows=1)
  for _ in range(repeats + 1):
    chrono.time(matmul, a, a)
  return 2.0 * n**3 / chrono.median_s


@functools.cache
def device_peak_flops(precision: str = 'float32') -> tuple[float | None, str]:
  """(peak FLOP/s of the one device a cell runs on at `precision`, where it came from,
  naming the precision). Accelerators from the table; a CPU is measured once per machine
  and precision with a large matmul in that dtype and cached on disk.

  A CPU's bfloat16 peak is measured, not taken as its float32 one: CPUs differ most there
  (with AVX512-BF16 or AMX a bf16 matmul can outrun a float32 one; without them it is
  emulated, often slower), and MFU should divide by what this machine's bf16 matmuls do.
  """
  if precision not in PRECISIONS:
    raise ValueError(f'precision {precision!r} is not known; valid: {", ".join(PRECISIONS)}')
  device = jax.devices()[0]
  if device.platform != 'cpu':
    found = accelerator_peak(device.device_kind, precision)
    if found is None:
      return None, f'unknown accelerator ({precision})'
    peak, kind = found
    return peak, f'table:{kind}:{precision}' + ('' if peak else ' (none: no such unit)')
  # float32 keeps the key it had before precisions, so a machine's measured peak stays.
  key = (f'{platform.node()}-{platform.machine()}-{os.cpu_count()}-{jax.__version__}'
         + ('' if precision == 'float32' else f'-{precision}'))
  cache_file = files.cache_dir() / 'cpu_peak.json'
  try:
    cached = json.loads(cache_file.read_text())
  except (OSError, ValueError):
    cached = {}
  if key not in cached:
    cached[key] = measure_matmul_flops(dtype=jnp.dtype(precision))
    try:
      files.write_atomically(cache_file, json.dumps(cached))
    except OSError:
      pass  # read-only home: measure again next time
  return cached[key], f'measured:matmul2048:{precision}'
