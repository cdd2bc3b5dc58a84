"""Tonle's shared core: the MQTT contract, settings, database schema and the ``tonle`` command."""

__version__ = "0.1.0"
