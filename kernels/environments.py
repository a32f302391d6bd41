"""Runtime environments: the Python a kernel runs on, apart from the worker's and the server's.

Each environment is a venv with ipykernel and a package list, built once per worker in
`<envs dir>/<name>-<hash of what is in it>` and reused after (a file lock keeps two
workers on one machine from building the same one twice). It is mounted read-only in the
sandbox; `%pip install` in a notebook goes to that notebook's own layer, the user site in
`/content/.local`, which shadows the environment's packages without touching them.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import shutil
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from kernels.messages import Environment

log = logging.getLogger(__name__)

# What Colab users expect to import on first contact.
SCIENTIFIC_STACK = [
    "numpy",
    "pandas",
    "matplotlib",
    "scipy",
    "scikit-learn",
    "seaborn",
    "plotly",
    "nbformat",  # plotly's fig.show() refuses to draw without it
    "ipywidgets",
    "tqdm",
    "requests",
    "pillow",
]
DEFAULT_ENVIRONMENTS: dict[str, list[str]] = {
    "default": SCIENTIFIC_STACK,
    "default-gpu": [*SCIENTIFIC_STACK, "torch"],
}
_STAMP = ".tandem-env.json"
_LAYOUT = 2  # bumped when how an environment is built changes: older ones are rebuilt
# Put first in the environment: a notebook's `%pip install` layer (the user site) goes
# before the environment's own packages, so an upgrade made in a notebook takes effect.
_SITECUSTOMIZE = """\
# Written by Tandem.
import site
import sys

_layer = site.getusersitepackages()
if _layer in sys.path:
    sys.path.remove(_layer)
    _first = next((i for i, p in enumerate(sys.path) if p.endswith("-packages")), len(sys.path))
    sys.path.insert(_first, _layer)
"""

Progress = Callable[[str], Awaitable[None]]


class EnvironmentBuildError(Exception):
    """An environment could not be built; the message says which step and why."""


@dataclass(frozen=True)
class BuiltEnvironment:
    name: str
    prefix: Path
    base_prefix: Path
    # The base interpreter's site-packages: hidden in the sandbox, so a kernel sees only
    # its environment and its notebook's layer.
    base_site: tuple[Path, ...]
    version: str  # "3.11"

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / "python"

    def user_site(self, userbase: Path) -> Path:
        return userbase / "lib" / f"python{self.version}" / "site-packages"


def base_python() -> str:
    """The interpreter environments are made from: the base of the worker's own Python."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return str(candidate) if candidate.exists() else sys.executable


def spec_hash(spec: Environment, python: str) -> str:
    packages = sorted({"ipykernel", *spec.packages})
    text = json.dumps({"python": python, "packages": packages, "layout": _LAYOUT})
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class EnvironmentStore:
    """Finds or builds environments under one directory."""

    def __init__(self, root: Path, python: str | None = None) -> None:
        self.root = root
        self.python = python or base_python()
        self._building: dict[str, asyncio.Future[BuiltEnvironment]] = {}

    def path_of(self, spec: Environment) -> Path:
        return self.root / f"{spec.name}-{spec_hash(spec, self.python)}"

    async def get(self, spec: Environment, progress: Progress | None = None) -> BuiltEnvironment:
        key = str(self.path_of(spec))
        pending = self._building.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._get(spec, progress))
            self._building[key] = pending
            pending.add_done_callback(lambda _: self._building.pop(key, None))
        return await asyncio.shield(pending)

    def find(self, spec: Environment) -> BuiltEnvironment | None:
        stamp = self.path_of(spec) / _STAMP
        try:
            data = json.loads(stamp.read_text())
            return BuiltEnvironment(
                name=spec.name,
                prefix=self.path_of(spec),
                base_prefix=Path(data["base_prefix"]),
                base_site=tuple(Path(p) for p in data["base_site"]),
                version=str(data["version"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def _get(self, spec: Environment, progress: Progress | None) -> BuiltEnvironment:
        built = self.find(spec)
        if built is not None:
            return built
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # kernels run as another user and must read it
        lock_path = self.root / f".{self.path_of(spec).name}.lock"
        with lock_path.open("w") as lock:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            built = self.find(spec)  # another worker built it while we waited
            if built is None:
                built = await self._build(spec, progress)
        return built

    async def _build(self, spec: Environment, progress: Progress | None) -> BuiltEnvironment:
        prefix = self.path_of(spec)
        packages = sorted({"ipykernel", *spec.packages})
        say = f"building runtime environment '{spec.name}' ({len(packages)} packages) in {prefix}"
        log.info("%s; this happens once", say)
        if progress is not None:
            await progress(f"building environment '{spec.name}' (once)")
        shutil.rmtree(prefix, ignore_errors=True)  # a build that was cut short
        await self._run([self.python, "-m", "venv", str(prefix)], "create the venv")
        pip = [str(prefix / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off"]
        await self._run([*pip, "--", *packages], "install packages", progress, spec.name)
        info = await self._run(
            [
                str(prefix / "bin" / "python"),
                "-I",
                "-c",
                "import json, subprocess, sys; base = subprocess.run([sys._base_executable,"
                " '-I', '-c', 'import site, json; print(json.dumps(site.getsitepackages()))'],"
                " capture_output=True, text=True, check=True).stdout; print(json.dumps({"
                "'base_prefix': sys.base_prefix, 'base_site': json.loads(base),"
                " 'version': '%d.%d' % sys.version_info[:2]}))",
            ],
            "inspect the interpreter",
        )
        data = json.loads(info.strip().splitlines()[-1])
        site_packages = prefix / "lib" / f"python{data['version']}" / "site-packages"
        (site_packages / "sitecustomize.py").write_text(_SITECUSTOMIZE)
        # The notebook's layer is the user site, which a venv allows only when it also
        # includes the base site-packages; the sandbox hides those (`base_site`).
        config = prefix / "pyvenv.cfg"
        config.write_text(
            config.read_text().replace(
                "include-system-site-packages = false", "include-system-site-packages = true"
            )
        )
        (prefix / _STAMP).write_text(json.dumps({**data, "packages": packages}))
        log.info("runtime environment '%s' is ready", spec.name)
        built = self.find(spec)
        assert built is not None
        return built

    @staticmethod
    async def _run(
        command: list[str], step: str, progress: Progress | None = None, name: str = ""
    ) -> str:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        lines: list[str] = []
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            if line.startswith(("Collecting ", "Installing collected", "Successfully")):
                log.info("environment %s: %s", name, line[:200])
                if progress is not None:
                    await progress(f"building environment '{name}': {line[:150]}")
        if await process.wait() != 0:
            tail = " | ".join(lines[-3:])[-500:]
            raise EnvironmentBuildError(f"could not {step}: {tail}")
        return "\n".join(lines)
