"""Model presets, named sweeps and scenario files."""
