# The hub's image: the locked environment (uv.lock), the project's code, a non-root user.
# Every service of docker-compose.yml runs it: `cettar` is the entry point, and the Prefect
# server and the worker start `prefect` from the same environment, so the server, the
# worker and the flows always run the one Prefect version the lock pins.
FROM python:3.11.11-slim-bookworm

# pg_dump and pg_restore for `cettar db backup|restore` on PostgreSQL. Bookworm's client
# is version 15, the major version of the compose file's server: pg_dump refuses a newer
# server, so bump both together.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# The uv version ./dev pins, so the image installs uv.lock exactly as development does.
RUN pip install --no-cache-dir --disable-pip-version-check "uv==0.13.8"

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

WORKDIR /app
# The dependencies first: that layer is rebuilt only when the lock changes, not the code.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3.11
COPY . .
# The code is read-only for the runtime user: compiled now, or every process start
# compiles it again (seconds per flow run).
RUN uv sync --frozen --no-dev --python /usr/local/bin/python3.11 \
    && .venv/bin/python -m compileall -q -x '/\.venv/' /app

# A fixed uid, so volumes keep their owner across image rebuilds.
RUN useradd --create-home --uid 10001 --user-group cettar \
    && mkdir -p /data /backups \
    && chown cettar:cettar /data /backups
USER cettar

# CETTAR_HOME: the checkout the work pool's pull step starts each run from (prefect.yaml).
# The Prefect server copies its UI files on start; site-packages is not the user's to write.
ENV PATH=/app/.venv/bin:$PATH \
    CETTAR_HOME=/app \
    CETTAR_DATA_DIR=/data \
    PREFECT_UI_STATIC_DIRECTORY=/home/cettar/.prefect/ui
VOLUME ["/data"]
ENTRYPOINT ["cettar"]
CMD ["--help"]
