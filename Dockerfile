# The Tandem server and the worker (`tandem worker`) in one image.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY kernels ./kernels
COPY static/dist ./static/dist
RUN pip install --no-cache-dir .
ENV TANDEM_DATA_DIR=/data TANDEM_HOST=0.0.0.0 TANDEM_PORT=8000 TANDEM_STATIC_DIR=/app/static/dist
VOLUME /data
EXPOSE 8000
CMD ["tandem", "serve"]
