"""The ingester: MQTT telemetry in, validated batches into PostgreSQL, acknowledged after commit."""
