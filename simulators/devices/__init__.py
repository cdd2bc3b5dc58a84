"""Simulated field devices: machines' meters served over the protocols real ones speak."""
