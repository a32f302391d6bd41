"""Every kernel in a box of its own, made with bubblewrap (what Flatpak uses).

Inside, a kernel runs as an unprivileged user with no capabilities, in a new session and
its own PID, IPC and UTS namespaces. It sees the system read-only (an allow-list of /usr,
/lib, a few /etc entries), its environment read-only, a private /tmp, its notebook's
working directory read-write at /content, the device nodes of the GPUs it was given, and
its run directory (connection file and ZMQ sockets, at the same path inside and out) —
nothing of the worker's, the server's or another kernel's. The kernel speaks ZMQ over unix
sockets in that run directory, so no other kernel can reach its ports.

When the worker runs as root, bubblewrap sets the box up as root and `setpriv` then turns
the kernel into `kernel_uid` (not the worker's user); otherwise bubblewrap runs in a user
namespace of the worker's user, and the badge says the kernel shares the worker's uid.
Limits come from `cgroups.py`; the kernel joins its cgroup before it starts
(`sandbox_enter.py`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kernels import messages as m
from kernels.cgroups import KernelCgroup, LimitsBackend
from kernels.environments import BuiltEnvironment
from kernels.quota import DiskQuotas

CONTENT = Path("/content")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What programs need of /etc; the rest (shadow, the worker's config, ...) stays out.
ETC_ENTRIES = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "fonts",
    "gai.conf",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "lsb-release",
    "matplotlibrc",
    "mime.types",
    "nsswitch.conf",
    "nvidia",
    "os-release",
    "pip.conf",
    "pki",
    "protocols",
    "resolv.conf",
    "services",
    "ssl",
    "timezone",
    "xdg",
)
GPU_CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
# Passed to kernels from the worker's environment: locale, proxies, certificates, package
# indexes. Nothing else of the worker's environment (its token least of all) reaches them.
PASSTHROUGH_ENV = (
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_DEFAULT_TIMEOUT",
    "NVIDIA_DRIVER_CAPABILITIES",
)
SandboxMode = Literal["bubblewrap", "none"]
KERNEL_USER = "tandem"


@dataclass(frozen=True)
class KernelBox:
    """What one kernel's box is made of."""

    environment: BuiltEnvironment
    workdir: Path  # the notebook's working directory on the worker (/content inside)
    rundir: Path  # connection file and sockets; the same path inside and out
    gpus: Sequence[int] = ()
    hide: Sequence[Path] = ()  # never visible, even where a bound tree contains them


def bwrap_args(
    box: KernelBox,
    *,
    uid: int | None,
    dev: Path = Path("/dev"),
    etc: Path = Path("/etc"),
) -> list[str]:
    """bubblewrap's arguments for this box, up to and including the `--` before the command.

    `uid`: the kernel's user when bubblewrap runs as root; None runs it in a user
    namespace of the caller's user instead."""
    args = ["bwrap", "--die-with-parent", "--new-session"]
    args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--hostname", "tandem"]
    # jupyter_client's parent pid means nothing in the box's PID namespace (ipykernel would
    # shut down, taking its parent for gone); --die-with-parent does that job here.
    args += ["--unsetenv", "JPY_PARENT_PID"]
    if uid is None:
        args += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    bound: list[Path] = []
    # Directories bubblewrap makes to hold mount points are 0700 unless told otherwise.
    args += ["--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/var"]
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
            bound.append(path)
    for name in ETC_ENTRIES:
        path = etc / name
        if path.exists():
            args += ["--ro-bind", str(path), f"/etc/{name}"]
            bound.append(path)
    if uid is not None:
        args += ["--ro-bind", str(box.rundir / "passwd"), "/etc/passwd"]
        args += ["--ro-bind", str(box.rundir / "group"), "/etc/group"]
    args += ["--ro-bind", "/sys", "/sys", "--proc", "/proc", "--dev", "/dev"]
    # Private, empty, in the box only.
    for private in ("/tmp", "/var/tmp", "/dev/shm"):  # noqa: S108
        args += ["--perms", "1777", "--tmpfs", private]
    args += ["--tmpfs", "/run"]
    env = box.environment
    made = {Path("/tmp"), Path("/var/tmp"), Path("/run")}  # noqa: S108  (the box's tmpfs)
    for tree in _outermost([env.base_prefix, env.prefix]):
        if not any(tree.is_relative_to(other) for other in bound):
            args += _parent_dirs(tree, bound, made)
            args += ["--ro-bind", str(tree), str(tree)]
            bound.append(tree)
    for site in env.base_site:
        if site.is_dir() and not site.is_relative_to(env.prefix):
            args += ["--tmpfs", str(site)]  # the base interpreter's packages stay out
    # A path to hide inside a bound tree is covered; one above the box's own mounts is
    # not bound at all, so nothing of it but those mounts is there to see.
    needed = [env.prefix, box.rundir, box.workdir]
    for hidden in box.hide:
        if not any(hidden.is_relative_to(tree) for tree in bound) or not hidden.exists():
            continue
        if any(path.is_relative_to(hidden) for path in needed):
            continue
        if hidden.is_dir():
            args += ["--tmpfs", str(hidden)]
        else:
            args += ["--ro-bind", "/dev/null", str(hidden)]
    args += _parent_dirs(box.rundir, bound, made)
    args += ["--bind", str(box.rundir), str(box.rundir)]
    args += ["--bind", str(box.workdir), str(CONTENT), "--chdir", str(CONTENT)]
    for node in gpu_device_nodes(box.gpus, dev):
        args += ["--dev-bind", str(node), f"/dev/{node.name}"]
    caps = dev / "nvidia-caps"
    if box.gpus and caps.is_dir():
        args += ["--dev-bind", str(caps), "/dev/nvidia-caps"]
    args.append("--")
    if uid is not None:
        args += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        args += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return args


def gpu_device_nodes(gpus: Sequence[int], dev: Path = Path("/dev")) -> list[Path]:
    """The device nodes a kernel with these GPUs needs: its own /dev/nvidiaN and the shared
    control nodes; never another GPU's."""
    if not gpus:
        return []
    nodes = [dev / f"nvidia{index}" for index in gpus]
    nodes += [dev / name for name in GPU_CONTROL_NODES]
    return [node for node in nodes if node.exists()]


def kernel_env(
    environment: BuiltEnvironment,
    gpus: Sequence[int],
    content: Path,
    source: Mapping[str, str],
) -> dict[str, str]:
    """The kernel's whole environment: built here, never copied from the worker's."""
    userbase = content / ".local"
    env = {name: source[name] for name in PASSTHROUGH_ENV if name in source}
    env.setdefault("LANG", "C.UTF-8")
    env |= {
        "PATH": f"{userbase}/bin:{environment.prefix}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(content),
        "USER": KERNEL_USER,
        "LOGNAME": KERNEL_USER,
        "SHELL": "/bin/sh",
        "TMPDIR": "/tmp",  # noqa: S108  (the box's own)
        # Startup files an editor planted in /content must not run in later kernels.
        "IPYTHONDIR": "/tmp/ipython",  # noqa: S108
        # /content is the notebook's files, kept by the server: caches stay out of it.
        "XDG_CACHE_HOME": "/tmp/.cache",  # noqa: S108
        "MPLCONFIGDIR": "/tmp/matplotlib",  # noqa: S108
        "PIP_NO_CACHE_DIR": "1",
        "VIRTUAL_ENV": str(environment.prefix),
        # `%pip install` lands in the notebook's layer: the user site under /content.
        "PYTHONUSERBASE": str(userbase),
        "PIP_USER": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        # Indices as nvidia-smi numbers them; a CPU kernel sees no GPU at all.
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "CUDA_VISIBLE_DEVICES": ",".join(str(index) for index in gpus),
    }
    return env


@dataclass
class Launch:
    """How to start one kernel, and what to clean up after it."""

    argv: list[str]  # `{connection_file}` is filled in by jupyter_client
    env: dict[str, str]
    cwd: str
    rundir: Path
    workdir: Path
    limits: m.Limits
    cgroup: KernelCgroup
    ipc_prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self.ipc_prefix = str(self.rundir / "k")

    def cleanup(self) -> None:
        self.cgroup.destroy()
        shutil.rmtree(self.rundir, ignore_errors=True)


class Sandboxer:
    """The worker's way of boxing kernels; `describe()` is what the server shows."""

    def __init__(
        self,
        mode: SandboxMode,
        limits: LimitsBackend,
        *,
        state_dir: Path,
        kernel_uid: int = 64000,
        hide: Sequence[Path] = (),
        defaults: m.Limits | None = None,
        limits_note: str = "",
    ) -> None:
        self.mode = mode
        self._limits = limits
        self._limits_note = limits_note
        self._state_dir = state_dir
        self._as_root = os.geteuid() == 0
        self.kernel_uid = kernel_uid if self._as_root else os.geteuid()
        self._hide = list(hide)
        self._defaults = defaults or m.Limits()
        self.unavailable = ""
        self.quotas = DiskQuotas()

    def probe(self) -> None:
        """Try a box once: where it cannot be made, no kernel starts, and `describe` says
        why in one line."""
        if self.mode == "none":
            return
        missing = [tool for tool in self._tools() if shutil.which(tool) is None]
        if missing:
            self.unavailable = (
                f"{' and '.join(missing)} not found: install bubblewrap "
                "(or run the worker with --unsafe-no-sandbox on a single-user machine)"
            )
            return
        args = ["bwrap", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
        args += ["--unshare-pid", "--die-with-parent", "--new-session"]
        if self._as_root:
            args += ["--", "setpriv", f"--reuid={self.kernel_uid}", f"--regid={self.kernel_uid}"]
            args += ["--clear-groups", "--", "true"]
        else:
            args += ["--unshare-user", "--cap-drop", "ALL", "--", "true"]
        try:
            done = subprocess.run(  # noqa: S603  (fixed arguments, no shell)
                args, capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            self.unavailable = f"bubblewrap cannot start: {error}"
            return
        if done.returncode != 0:
            line = (done.stderr.strip().splitlines() or ["no reason given"])[-1][:300]
            self.unavailable = f"bubblewrap cannot make a sandbox here: {line}"

    def _tools(self) -> list[str]:
        return ["bwrap", "setpriv"] if self._as_root else ["bwrap"]

    def describe(self) -> m.Sandbox:
        if self.mode == "none":
            return m.Sandbox(
                kind="none",
                limits="none",
                detail="UNSANDBOXED: kernels run as the worker's user and can read what it can",
            )
        if self.unavailable:
            return m.Sandbox(kind="unavailable", detail=self.unavailable)
        notes = [self._limits_note] if self._limits_note else []
        if self.quotas.unavailable:
            notes.append(self.quotas.unavailable)
        if not self._as_root:
            notes.append("kernels share the worker's uid (run the worker as root for its own)")
        limits = self._limits.describe()
        return m.Sandbox(kind="bubblewrap", limits=limits, detail="; ".join(notes)[:1000])

    def effective(self, limits: m.Limits) -> m.Limits:
        return m.Limits(
            memory_mb=limits.memory_mb or self._defaults.memory_mb,
            cpus=limits.cpus or self._defaults.cpus,
            max_processes=limits.max_processes or self._defaults.max_processes,
            disk_mb=limits.disk_mb or self._defaults.disk_mb,
        )

    def workspace_root(self, workspace: str) -> Path:
        """The notebook's working directory on this worker (/content in the box)."""
        return self._state_dir / "workspaces" / workspace

    @property
    def file_owner(self) -> int | None:
        """Who owns what the worker writes into /content: the kernel's user when the worker
        runs as root (else the worker's own user, which is the kernel's too)."""
        return self.kernel_uid if self._as_root and self.mode != "none" else None

    def workdir(self, workspace: str, environment: BuiltEnvironment) -> Path:
        workdir = self.workspace_root(workspace)
        # The notebook's `%pip install` layer must exist before Python starts to be on its
        # path (site adds the user site only when it is there).
        workdir.mkdir(parents=True, exist_ok=True)
        made = [workdir]
        for part in environment.user_site(workdir / ".local").relative_to(workdir).parts:
            made.append(made[-1] / part)
            _own_directory(made[-1])
        if self._as_root and self.mode != "none":
            # Only what the worker made (the workspace, the layer's directories), never
            # through a symlink: the kernel controls /content and could point one anywhere.
            for path in made:
                if path.lstat().st_uid != self.kernel_uid:
                    os.chown(path, self.kernel_uid, self.kernel_uid, follow_symlinks=False)
        return workdir

    def prepare(
        self,
        kernel_id: str,
        environment: BuiltEnvironment,
        workspace: str,
        gpus: Sequence[int],
        limits: m.Limits,
    ) -> Launch:
        if self.unavailable:
            raise SandboxUnavailable(self.unavailable)
        workdir = self.workdir(workspace, environment)
        # Short: unix socket paths end at 107 bytes.
        rundir = Path(tempfile.mkdtemp(prefix="tandem-k-"))
        effective = self.effective(limits)
        cgroup = self._limits.create(kernel_id, effective)
        kernel = [str(environment.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        enter = [sys.executable, "-I", "-S", str(Path(__file__).with_name("sandbox_enter.py"))]
        for procs in cgroup.join_files():
            enter += ["--cgroup", str(procs)]
        for name, value in cgroup.rlimits.items():
            enter += ["--rlimit", f"{name}={value}"]
        if self.mode == "none":
            env = kernel_env(environment, gpus, workdir, os.environ)
            argv = [*enter, "--", *kernel]
            return Launch(argv, env, str(workdir), rundir, workdir, effective, cgroup)
        if self._as_root:
            os.chown(rundir, self.kernel_uid, self.kernel_uid)
            self._write_identity(rundir)
            enter += ["--chown", f"{self.kernel_uid}:{{connection_file}}"]
        box = KernelBox(environment, workdir, rundir, gpus, self._hide)
        uid = self.kernel_uid if self._as_root else None
        env = kernel_env(environment, gpus, CONTENT, os.environ)
        argv = [*enter, "--", *bwrap_args(box, uid=uid), *kernel]
        return Launch(argv, env, str(workdir), rundir, workdir, effective, cgroup)

    def _write_identity(self, rundir: Path) -> None:
        """/etc/passwd and /etc/group in the box: root, and the kernel's user."""
        uid = self.kernel_uid
        (rundir / "passwd").write_text(
            f"root:x:0:0:root:/root:/bin/sh\n{KERNEL_USER}:x:{uid}:{uid}::/content:/bin/sh\n"
        )
        (rundir / "group").write_text(f"root:x:0:\n{KERNEL_USER}:x:{uid}:\n")
        for name in ("passwd", "group"):
            (rundir / name).chmod(0o644)


def _own_directory(path: Path) -> None:
    """Make `path` a real directory: a symlink or file the kernel left in its place (to
    aim the root worker elsewhere, or to break the next start) is removed first."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    path.mkdir(exist_ok=True)


class SandboxUnavailable(Exception):
    """No box can be made on this worker, so no kernel starts."""


def _parent_dirs(path: Path, bound: Sequence[Path], made: set[Path]) -> list[str]:
    """Make the directories above a mount point world-traversable (bubblewrap makes them
    0700 otherwise, and the kernel's user could not reach its own environment)."""
    args: list[str] = []
    for parent in reversed(path.parents):
        if parent == Path("/") or parent in made or any(parent.is_relative_to(b) for b in bound):
            continue
        args += ["--perms", "0755", "--dir", str(parent)]
        made.add(parent)
    return args


def _outermost(paths: Sequence[Path]) -> list[Path]:
    """Drop paths inside another of the list (one bind covers them)."""
    return [p for p in paths if not any(p != o and p.is_relative_to(o) for o in paths)]
