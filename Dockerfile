# One image for the Dagster code server, webserver and daemon (docker-compose.yml).
FROM python:3.11-slim
WORKDIR /opt/grid-guardian
COPY pyproject.toml README.md ./
COPY grid_guardian_assets ./grid_guardian_assets
COPY scripts ./scripts
RUN pip install --no-cache-dir -e . dagster-postgres==0.29.27 \
 && pip install --no-cache-dir --no-deps torch-geometric-temporal==0.56.2
COPY workspace.yaml ./
COPY deploy/dagster.production.yaml /opt/dagster/dagster_home/dagster.yaml
ENV DAGSTER_HOME=/opt/dagster/dagster_home GRID_GUARDIAN_DATA_DIR=/var/lib/grid-guardian
