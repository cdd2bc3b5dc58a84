"""The ingester: MQTT telemetry in, validated and batched rows into PostgreSQL, acked after commit."""
