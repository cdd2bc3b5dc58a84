"""Modbus meters at the edge: register maps, the register codec and the polling source."""
