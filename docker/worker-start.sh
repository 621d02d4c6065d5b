#!/bin/sh
# The worker service: migrate the store, make sure the pool and every deployment of
# prefect.yaml exist on the server, apply the hub's automations, then poll the pool.
# Each step is idempotent, so a restarted container (or a new image) just redoes them.
set -eu
cd "$CETTAR_HOME"
cettar db upgrade
prefect work-pool inspect cettar-process >/dev/null 2>&1 \
  || prefect work-pool create cettar-process --type process
prefect --no-prompt deploy --all
cettar automations apply
exec prefect worker start --pool cettar-process --type process --with-healthcheck
