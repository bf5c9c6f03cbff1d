"""Performance benchmarks that print figures and write records (never timed assertions):
archbench's backbones against PyTorch at the same shapes, and generation latency."""
