# One image for every Tonle service of the compose stack: `docker compose build`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The service user, its working directory and the simulators' spool directory; and the
# directory the broker-files service writes Mosquitto's files into, owned by Mosquitto's
# uid (1883 in eclipse-mosquitto) so that a fresh named volume mounted there starts with
# that owner and the broker can read the files without them being world-readable.
RUN groupadd --system --gid 10001 tonle \
    && useradd --system --uid 10001 --gid tonle --home-dir /var/lib/tonle --create-home tonle \
    && install -d -o tonle -g tonle -m 0750 /var/lib/tonle/spool \
    && install -d -o 1883 -g 1883 -m 0750 /mosquitto/generated

WORKDIR /src
COPY pyproject.toml README.md ./
COPY tonle ./tonle
COPY edge ./edge
COPY ingest ./ingest
COPY simulators ./simulators
COPY analytics ./analytics
COPY api ./api
COPY dashboards ./dashboards
COPY benchmarks ./benchmarks
RUN pip install --no-cache-dir . && rm -rf /src/build

USER tonle
WORKDIR /var/lib/tonle
ENTRYPOINT ["tonle"]
CMD ["--help"]
