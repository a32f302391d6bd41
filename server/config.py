"""Settings, read from `TANDEM_*` environment variables (and CLI flags that override them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernels.environments import DEFAULT_ENVIRONMENTS
from kernels.messages import check_requirement
from server.vocabulary import DEFAULT_RUNTIME_TYPES, RuntimeType


class LoginProvider(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    url: str = Field(pattern=r"^(https://|/)", max_length=2000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_", extra="ignore")

    data_dir: Path = Field(default=Path("tandem-data"))
    # Empty means "a SQLite file inside data_dir".
    database_url: str = ""
    # Several replicas on one database: redis://HOST:PORT/DB carries updates, presence,
    # events and login throttles between them (empty: one process, all in memory).
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000

    # Reverse proxies whose X-Forwarded-For / -Proto are believed (addresses or networks);
    # empty: none, the peer address is the client's.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Sockets refused at once (429) from an address whose sign-ins failed this many times
    # within the window (bad, expired or revoked tokens and cookies; successes never
    # count), until the window has passed; 0 turns it off. A tab left open after its
    # sign-in ended retries its two sockets every 2 to 2.5 s (about 50 failures a minute),
    # so 300 a minute leaves room for five behind one NAT address, and a flood of
    # thousands a second gets 5 look-ups a second.
    socket_auth_max_failures: int = Field(default=300, ge=0)
    socket_auth_window_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Origins allowed for cookie-authenticated requests besides the server's own.
    allowed_origins: list[str] = Field(default_factory=list)
    session_days: int = 14
    cookie_secure: bool = False
    # "Sign in with ..." buttons on the login page, for single sign-on to come: a JSON list
    # of {"name": ..., "url": ...}. Nothing behind them yet; empty shows none.
    login_providers: list[LoginProvider] = Field(default_factory=list)

    max_frame_bytes: int = 16 * 1024 * 1024
    # Largest .ipynb one may import.
    max_upload_mb: int = Field(default=256, ge=1)
    # permessage-deflate costs CPU on both ends for updates of a few bytes, and a browser
    # inflates on its main thread; worth it only on slow links.
    ws_compression: bool = False
    # Largest awareness state one client may publish (names, cursors, selections).
    max_awareness_bytes: int = 64 * 1024
    # Messages waiting for a slow client before it is disconnected (it resyncs on reconnect).
    client_send_queue: int = 4096

    room_grace_seconds: float = 30.0
    compact_after_updates: int = 2000
    compact_after_bytes: int = 4 * 1024 * 1024
    # Appends waiting for one group commit are capped so one batch never holds a huge lock.
    max_batch_updates: int = 1024

    # WAL + NORMAL survives a kill -9 of the server (not a power cut); FULL survives both.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    # Automatic checkpoints of a notebook while it is edited (and when its room closes).
    checkpoint_seconds: float = 600.0

    # --- notebook files ------------------------------------------------------------------
    # Where file contents live: empty for the data dir, or s3://BUCKET[/PREFIX] (needed when
    # several replicas run); S3 credentials come the usual AWS ways (AWS_ACCESS_KEY_ID, ...).
    files_url: str = ""
    s3_endpoint_url: str = ""  # for S3-compatible servers (MinIO, Ceph, R2, ...)
    s3_region: str = ""
    # Each notebook's files together, and how many files and folders it may hold.
    notebook_files_mb: int = Field(default=1024, ge=1)
    notebook_files_max: int = Field(default=10_000, ge=1)

    # --- kernel gateway ------------------------------------------------------------------
    # `tandem serve` starts a worker on this machine unless told not to (--no-worker).
    local_worker: bool = True
    local_worker_max_kernels: int | None = None
    # JSON list, e.g. [{"name": "cpu"}, {"name": "a100", "gpus": 1, "gpu_model": "A100"}];
    # the first is the default for notebooks that never chose one.
    runtime_types: list[RuntimeType] = Field(
        default_factory=lambda: list(DEFAULT_RUNTIME_TYPES), min_length=1
    )
    # Runtime environments by name: the packages (besides ipykernel) each has; a runtime
    # type names one ("environment"), else "default" (CPU) or "default-gpu" (GPU).
    environments: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_ENVIRONMENTS.items()}
    )
    # The local worker's kernels: sandboxed unless this is set (a single-user laptop only).
    unsafe_no_sandbox: bool = False
    worker_heartbeat_seconds: float = 5.0
    # A worker silent this long is cut off (its connection closed).
    worker_timeout_seconds: float = 20.0
    # A worker whose connection drops keeps its kernels this long, and the server waits as
    # long for it to come back (to this server or, restarted, another) before the runtime
    # is lost: a running cell keeps running and its output continues. 0: lost at once.
    worker_reconnect_grace_seconds: float = Field(default=60.0, ge=0, le=3600)
    kernel_start_timeout_seconds: float = 120.0
    # Several replicas: a notebook's runtime belongs to one replica at a time, held by a
    # lease it renews; a replica that stops renewing (killed, cut off from Redis) loses it
    # after this long, and another takes the runtime over.
    runtime_lease_seconds: float = Field(default=15.0, gt=0, le=600)
    # How long a command sent to the replica that owns a runtime waits for its answer.
    forward_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # As on Colab: stop a kernel after this long without execution, and at this age.
    kernel_idle_timeout_seconds: float = 90 * 60
    kernel_max_lifetime_seconds: float = 12 * 3600
    kernel_warning_seconds: float = 5 * 60
    # How long a run waits for the requester's edits (its state vector) to arrive.
    execute_sync_timeout_seconds: float = 10.0
    # Output one execution may store in its cell; past it, a truncation notice.
    max_output_bytes_per_cell: int = 5 * 1024 * 1024
    # Kernel output is written into the document at most this often (coalesced between).
    output_flush_seconds: float = 0.05
    # The widget models of one kernel the server follows (and asks an adopted kernel about).
    max_widgets_per_kernel: int = Field(default=10_000, ge=1, le=10_000)

    @field_validator("environments")
    @classmethod
    def _packages(cls, environments: dict[str, list[str]]) -> dict[str, list[str]]:
        for packages in environments.values():
            for package in packages:
                check_requirement(package)
        return environments

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tandem.db').resolve()}"
