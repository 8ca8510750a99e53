# The harvester daemon. Build: docker build -t scholarly-harvester .
# Run:   docker run -v $PWD/harvester.yaml:/etc/harvester/harvester.yaml:ro scholarly-harvester
# The container applies the migrations, then runs `harvester run` (arguments replace `run`).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY harvester ./harvester
COPY storage ./storage
COPY migrations ./migrations
# Exact versions from the lock file (the same install the test suite checks in a fresh venv).
RUN python -m venv /opt/harvester \
    && /opt/harvester/bin/pip install --no-cache-dir -c requirements.lock .

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 harvester \
    && useradd --system --uid 10001 --gid harvester --home-dir /var/lib/harvester --create-home harvester
COPY --from=build /opt/harvester /opt/harvester
COPY config/harvester.yaml /etc/harvester/harvester.yaml
ENV PATH=/opt/harvester/bin:$PATH \
    HARVESTER_CONFIG=/etc/harvester/harvester.yaml \
    PYTHONUNBUFFERED=1
WORKDIR /var/lib/harvester
USER 10001:10001
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["harvester", "health"]
ENTRYPOINT ["/bin/sh", "-c", "harvester db upgrade && exec harvester \"$@\"", "--"]
CMD ["run"]
