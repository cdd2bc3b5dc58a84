"""Energy management and predictive maintenance on the stored readings.

Pure logic (states, energy, peaks, baselines) works on numpy arrays of epoch
milliseconds and values and is tested without a database; ``analytics.store`` reads
the ``telemetry`` view and writes the results tables; ``analytics.job`` composes them
for ``tonle analytics run``.
"""
