"""The edge agent: samples sources, batches readings, spools to disk, publishes over MQTT.

It runs on small ARM gateways, so it imports nothing of the server side
(psycopg, scikit-learn, FastAPI); ``tests/edge/test_imports.py`` checks this.
"""
