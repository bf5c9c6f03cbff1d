"""Backbones, one file per architecture family, registered by name.

Importing this package registers every family; a new architecture is one new file that
calls `registry.register(...)` plus its import line below.
"""
from archbench.archs import registry
from archbench.archs.registry import SIZES, ArchSpec, get, names, register

# Family modules register themselves on import.
from archbench.archs import cnn, recurrent, transformer  # noqa: F401  (registration side effect)
from archbench.archs import tcn, lru, decoder, vit, encdec  # noqa: F401

__all__ = ['SIZES', 'ArchSpec', 'get', 'names', 'register', 'registry']
