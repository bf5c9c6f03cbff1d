"""Provenance: what a record's numbers depend on beyond the cell itself (the machine, XLA's
settings, the software, the code), measured where the cells run. It needs JAX (the devices,
XLA's configuration), which is why it lives in the harness, not in the results layer that
reads records.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import pathlib
import platform
import subprocess
import sys
from typing import Any

import jax

import archbench

from archbench.benchmarks.core import PROTOCOL
from archbench.benchmarks.results.records import utc_now

PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'numpy', 'orbax-checkpoint',
            'tensorflow-datasets', 'scikit-learn')
# The source checkout, when archbench runs from one (an editable install); a regular
# install lives in site-packages and has no commit of its own.
_SOURCE_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _package_version(name: str) -> str | None:
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None


def _cpu_model() -> str:
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def git_commit() -> str | None:
  """HEAD of the checkout archbench runs from, '+dirty' when it has local changes; None
  for an installed copy (whatever repository site-packages happens to sit in)."""
  try:
    run = lambda *a: subprocess.run(['git', *a], cwd=_SOURCE_ROOT, capture_output=True,
                                    text=True, timeout=5, check=True).stdout.strip()
    if pathlib.Path(run('rev-parse', '--show-toplevel')).resolve() != _SOURCE_ROOT:
      return None
    commit = run('rev-parse', 'HEAD')
    return commit + ('+dirty' if run('status', '--porcelain', '--untracked-files=no') else '')
  except (OSError, subprocess.SubprocessError):
    return None


# CPU features that decide which kernels XLA's CPU backend emits, and so both its speed
# and its float results (a fused multiply-add rounds once, AVX-512 sums in other orders).
_CPU_FEATURES = ('sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_fp16',
                 'avx_vnni', 'amx_tile', 'amx_bf16', 'asimd', 'sve')


def _cpu_features() -> list[str]:
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith(('flags', 'Features')):
        present = set(line.split(':', 1)[1].split())
        return [f for f in _CPU_FEATURES if f in present]
  except OSError:
    pass
  return []


def packages_digest() -> str:
  """A digest of every installed distribution and its version: two environments with the
  same digest have the same packages."""
  names = sorted({f'{d.metadata["Name"]}=={d.version}'.lower()
                  for d in importlib.metadata.distributions() if d.metadata['Name']})
  return hashlib.sha256('\n'.join(names).encode()).hexdigest()[:16]


def code_version(plugin_sources: list[str] | None = None) -> str:
  """A digest of archbench's own source and of the loaded plug-in files (or of
  `plugin_sources`, e.g. a record's env.plugins): what a resumed run must share with the
  run it continues, and a reused record with the run that reuses it, whether or not it
  runs from a git checkout."""
  from archbench import archs, data  # noqa: PLC0415  (their folders, wherever installed)
  from archbench import benchmarks
  from archbench.benchmarks import plugins
  digest = hashlib.sha256()
  for package in (archs, data, benchmarks):
    root = pathlib.Path(package.__file__).parent
    for path in sorted(root.rglob('*.py')):
      digest.update(str(path.relative_to(root)).encode())
      digest.update(path.read_bytes())
  for source in plugins.loaded() if plugin_sources is None else plugin_sources:
    path = pathlib.Path(source)
    digest.update(path.read_bytes() if path.is_file() else source.encode())
  return digest.hexdigest()[:16]


def environment(argv: list[str] | None = None) -> dict[str, Any]:
  """What the numbers depend on beyond the cell itself: the machine (CPU model and the
  features XLA targets, device kind and count), XLA's settings (flags, matmul precision),
  the software (Python, versions, a digest of every installed package) and the code
  (archbench's source digest, the git commit and whether it had local changes)."""
  device = jax.devices()[0]
  return {
      'python': platform.python_version(),
      'packages': {name: _package_version(name) for name in PACKAGES},
      'packages_digest': packages_digest(),
      **{name: _package_version(name) for name in ('jax', 'jaxlib', 'flax', 'optax')},
      'backend': jax.default_backend(),
      'device_kind': device.device_kind,
      'device_count': jax.device_count(),  # every host's, on a multi-host run
      'process_count': jax.process_count(),
      'cpu': _cpu_model(),
      'cpu_features': _cpu_features(),
      'cpu_count': os.cpu_count(),
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
      'matmul_precision': str(jax.config.jax_default_matmul_precision or 'default'),
      # With a persistent cache, a cell's compile_s may be a load from disk.
      'compile_cache': (jax.config.jax_compilation_cache_dir
                        if jax.config.jax_enable_compilation_cache else None),
      'platform': platform.platform(),
      'archbench': archbench.__version__,  # the release; code_version: the exact source
      'code_version': code_version(),
      'protocol': PROTOCOL,  # what its cells measure (core.PROTOCOL)
      'git_commit': git_commit(),
      'command': ' '.join(sys.argv if argv is None else argv),
      'utc_time': utc_now(),
  }
