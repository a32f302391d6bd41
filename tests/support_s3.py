"""A real S3-compatible server for the object-storage tests: moto in server mode, in a child
process on a free port, with one bucket made through boto3 and dummy credentials."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.support import free_port, terminate

REGION = "us-east-1"
# Dummy credentials, and no shared config files or instance metadata: nothing on the
# machine running the tests can point boto3 somewhere real.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "tandem-tests",
    "AWS_SECRET_ACCESS_KEY": "tandem-tests-secret",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


class S3Server:
    """moto's S3 at `endpoint_url`, holding `bucket`; `client` is the test's own view."""

    def __init__(self, log_path: Path, bucket: str) -> None:
        self.log_path = log_path
        self.bucket = bucket
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> Any:
        assert self._client is not None, "the S3 server is not started"
        return self._client

    def tandem_env(self, prefix: str) -> dict[str, str]:
        """What a `tandem serve` needs to keep its files in this bucket under `prefix`."""
        return {
            **AWS_ENV,
            "TANDEM_FILES_URL": f"s3://{self.bucket}/{prefix}",
            "TANDEM_S3_ENDPOINT_URL": self.endpoint_url,
            "TANDEM_S3_REGION": REGION,
        }

    def start(self) -> S3Server:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **AWS_ENV},
            )
        self._wait_until_up()
        self._client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        self._client.create_bucket(Bucket=self.bucket)
        return self

    def _wait_until_up(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited early:\n{self.log()}")
            try:
                httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"moto_server did not answer:\n{self.log()}")

    def keys(self, prefix: str = "") -> list[str]:
        """Every object's key under `prefix`, read from the server."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        terminate(self.proc, grace=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running_s3(log_dir: Path, bucket: str = "tandem-files") -> Iterator[S3Server]:
    """moto's S3 server for the length of the block, with `bucket` made; stopped after."""
    server = S3Server(log_dir / "moto.log", bucket)
    try:
        yield server.start()
    finally:
        server.stop()
