"""Detectors: pure statistics over windows of captured traffic, and the scheduled runner."""
