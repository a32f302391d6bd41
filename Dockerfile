# The Tandem server and the worker (`tandem worker`) in one image, with the default runtime
# environment (numpy, pandas, matplotlib, ...) built in, so the first cell runs at once.
#
#   docker build -t tandem .                                        # CPU workers
#   docker build -t tandem:gpu --build-arg ENVIRONMENT=default-gpu .  # + torch (CUDA wheels)
#
# GPU workers need only the driver from the host (NVIDIA Container Toolkit): PyPI's torch
# wheels carry the CUDA libraries. Kernels run in bubblewrap boxes inside the container, so
# the container needs to make namespaces and cgroups: see docker-compose.yml.
FROM python:3.11-slim
ARG ENVIRONMENT=default
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY kernels ./kernels
COPY static/dist ./static/dist
# Tandem in a venv of its own: kernels run on their environment, never on the server's.
RUN python -m venv /opt/tandem && /opt/tandem/bin/pip install --no-cache-dir ".[s3]"
ENV PATH=/opt/tandem/bin:$PATH TANDEM_ENVS_DIR=/var/lib/tandem-worker/envs
RUN tandem envs build "$ENVIRONMENT" --python /usr/local/bin/python3.11 \
    && rm -rf /root/.cache/pip
ENV TANDEM_DATA_DIR=/data TANDEM_HOST=0.0.0.0 TANDEM_PORT=8000 TANDEM_STATIC_DIR=/app/static/dist
VOLUME /data
EXPOSE 8000
CMD ["tandem", "serve"]
