"""Deterministic factory simulators that plug into the edge agent as a sensor source.

A layout (``simulators/layouts/*.yaml``) describes a site: shifts, grid, generator,
climate, lines and machines. :class:`simulators.source.SimulatorSource` turns it into a
stream of :class:`edge.sources.Sample` objects, backfilled or in real time, and records
what really happened (states, failures, outages, emitted counts) in a
:class:`simulators.truth.Truth`. Only the standard library, pydantic and PyYAML are used,
so the simulators run on the same small gateways as the edge agent.
"""
