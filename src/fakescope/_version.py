"""The package version, in a leaf module: `fetch` (its User-Agent), `serve` and the command line
read it from here, not from `fakescope/__init__`, which imports the Detector (no import circle)."""

__version__ = "0.1.0"
