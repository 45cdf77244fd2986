"""Fuzzing fakescope's parsers: valid seeds, structure-aware mutations, targets, a runner.

`tests/test_fuzz.py` runs a short seeded campaign and the regression files; `benchmarks/fuzz.py`
runs the long one and prints the numbers BENCHMARKS.md reports.
"""
