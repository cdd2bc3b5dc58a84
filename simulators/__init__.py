"""Deterministic factory simulators that plug into the edge agent as a sensor source.

A layout (``simulators/layouts/*.yaml``) describes a site: shifts, grid, generator,
climate, lines and machines. :class:`simulators.source.SimulatorSource` turns it into a
stream of :class:`edge.sources.Sample` objects, backfilled or in real time, and records
what really happened (states, failures, maintenance, disturbances, sensor faults,
outages, emitted counts) in a :class:`simulators.truth.Truth`. The stream itself needs
only the standard library, pydantic and PyYAML, so the simulators run on the same small
gateways as the edge agent; :mod:`simulators.fleet` (months of a fleet as numpy arrays, for the
maintenance benchmark) is the one module that needs numpy.
"""
