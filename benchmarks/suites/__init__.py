"""The built-in suites, one `get_config()` file each (see benchmarks/config.py for the
layout). `archbench run --suite NAME` runs `NAME.py` ('-' in a name is '_' in its file);
`archbench run --config=PATH` runs a suite file of your own."""
