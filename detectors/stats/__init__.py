"""The statistics the detectors share: samples, every drift test and its registry, binning and
the fitted per-column reference. Pure functions over arrays: no windows, no results, no I/O."""
