"""Shared vocabulary: the words every layer uses, defined below all of them.

`Role` (what a person may do with a notebook) and `RuntimeType` (a kind of runtime a
notebook can ask for) are named by the domain packages, by `collab` and by `config`; they
live here so that none of those has to import another to name them. This module imports
nothing from `server` (tests/test_layers.py holds it to that).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel
from sqlmodel import Field

from kernels.messages import Gpu, Limits


class Role(StrEnum):
    VIEWER = "viewer"
    COMMENTER = "commenter"
    EDITOR = "editor"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank

    @property
    def can_edit(self) -> bool:
        return self.allows(Role.EDITOR)


_RANK = {Role.VIEWER: 0, Role.COMMENTER: 1, Role.EDITOR: 2, Role.OWNER: 3}


class RuntimeType(BaseModel):
    """A kind of runtime a notebook can ask for, as "Change runtime type" offers them."""

    name: str = Field(min_length=1, max_length=64, regex=r"^[a-z0-9][a-z0-9_.-]*$")
    label: str = Field(default="", max_length=100)
    gpus: int = Field(default=0, ge=0, le=64)
    # Case-insensitive part of the GPU's name ("H100", "A100"); empty takes any GPU.
    gpu_model: str = Field(default="", max_length=100)
    min_gpu_memory_mb: int = Field(default=0, ge=0)
    # Limits of each kernel of this type (0: the worker's default, derived from its machine).
    memory_mb: int = Field(default=0, ge=0)
    cpus: float = Field(default=0, ge=0)
    max_processes: int = Field(default=0, ge=0)
    disk_mb: int = Field(default=0, ge=0)
    # The runtime environment (`TANDEM_ENVIRONMENTS`) its kernels run on.
    environment: str = Field(default="", max_length=64)

    @property
    def environment_name(self) -> str:
        return self.environment or ("default-gpu" if self.gpus else "default")

    def limits(self) -> Limits:
        return Limits(
            memory_mb=self.memory_mb,
            cpus=self.cpus,
            max_processes=self.max_processes,
            disk_mb=self.disk_mb,
        )

    def accepts(self, gpu: Gpu) -> bool:
        return (
            self.gpu_model.lower() in gpu.name.lower() and gpu.memory_mb >= self.min_gpu_memory_mb
        )


DEFAULT_RUNTIME_TYPES = [
    RuntimeType(name="cpu", label="CPU"),
    RuntimeType(name="gpu", label="GPU", gpus=1),
]
