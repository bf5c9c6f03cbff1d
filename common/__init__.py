"""What every layer may import (archs, data and benchmarks alike): it imports nothing of
archbench itself. files.py: the one atomic writer and the one cache directory."""
