"""Which cases of a registry-parametrised test run in the quick loop (`pytest -m "not
slow"`, kept under 5 minutes on 2 cores): one architecture per kind of computation, the
rest with the whole suite (CI runs it all), so a check still covers every architecture
and plug-in."""
import pytest

# Attention, a gated recurrence, a convolution.
REPRESENTATIVES = ('transformer', 'lstm', 'tcn')


def quick_subset(names, keep=REPRESENTATIVES) -> list:
  """`names` as parameters, those outside `keep` marked slow."""
  return [n if n in keep else pytest.param(n, marks=pytest.mark.slow) for n in names]
