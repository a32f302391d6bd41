"""The sandbox's pure parts: what bubblewrap is asked to mount, what a kernel's environment
holds, how cgroup files are read."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from kernels import cgroups, lifeline
from kernels.environments import BuiltEnvironment, spec_hash
from kernels.messages import Environment, Limits
from kernels.sandbox import CONTENT, KernelBox, bwrap_args, gpu_device_nodes, kernel_env

ENV = BuiltEnvironment(
    name="default",
    prefix=Path("/srv/envs/default-abc"),
    base_prefix=Path("/opt/python3.11"),
    base_site=(Path("/opt/python3.11/lib/python3.11/site-packages"),),
    version="3.11",
)


def fake_dev(tmp_path: Path, names: list[str]) -> Path:
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in names:
        (dev / name).touch()
    return dev


def test_a_kernel_gets_only_its_own_gpus(tmp_path: Path) -> None:
    dev = fake_dev(tmp_path, ["nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm"])
    assert [n.name for n in gpu_device_nodes([1], dev)] == ["nvidia1", "nvidiactl", "nvidia-uvm"]
    assert gpu_device_nodes([], dev) == []  # a CPU kernel: no GPU node at all
    box = KernelBox(ENV, tmp_path / "ws", tmp_path / "run", gpus=[2])
    args = bwrap_args(box, uid=64000, dev=dev)
    bound = [args[i + 2] for i, a in enumerate(args) if a == "--dev-bind"]
    assert bound == ["/dev/nvidia2", "/dev/nvidiactl", "/dev/nvidia-uvm"]


def test_the_box_binds_read_only_what_it_needs_and_hides_the_rest(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("ssl", "passwd", "shadow", "tandem"):
        (etc / name).mkdir() if name in ("ssl", "tandem") else (etc / name).touch()
    site = tmp_path / "python" / "lib" / "site-packages"
    site.mkdir(parents=True)
    env = BuiltEnvironment("default", tmp_path / "env", tmp_path / "python", (site,), "3.11")
    secret = tmp_path / "python" / "secret"
    secret.mkdir()
    box = KernelBox(env, tmp_path / "ws", tmp_path / "run", hide=[secret])
    args = bwrap_args(box, uid=64000, etc=etc)
    pairs = {(args[i], args[i + 2]) for i in range(len(args) - 2)}
    assert ("--ro-bind", "/etc/ssl") in pairs
    assert not any("shadow" in a or a.endswith("/tandem") for a in args)
    assert ("--ro-bind", str(env.prefix)) in pairs and ("--ro-bind", str(env.base_prefix)) in pairs
    assert ("--bind", str(CONTENT)) in pairs  # the only writable mounts: /content ...
    writable = [args[i + 2] for i, a in enumerate(args) if a == "--bind"]
    assert writable == [str(box.rundir), str(CONTENT)]  # ... and its own run dir
    assert args[args.index(str(site)) - 1] == "--tmpfs"  # the base interpreter's packages
    assert args[args.index(str(secret)) - 1] == "--tmpfs"  # a hidden path inside a bound tree
    command = args[args.index("--") + 1 :]
    assert command[:3] == ["setpriv", "--reuid=64000", "--regid=64000"]
    assert "--no-new-privs" in command and "--bounding-set=-all" in command
    for flag in ("--unshare-pid", "--unshare-ipc", "--new-session", "--die-with-parent"):
        assert flag in args


def test_without_root_the_box_is_a_user_namespace_without_capabilities(tmp_path: Path) -> None:
    args = bwrap_args(KernelBox(ENV, tmp_path / "ws", tmp_path / "run"), uid=None)
    assert "--unshare-user" in args and "--disable-userns" in args
    assert args[args.index("--cap-drop") + 1] == "ALL"
    assert "setpriv" not in args


def test_a_kernel_environment_never_carries_the_workers_secrets() -> None:
    source = {
        "TANDEM_WORKER_TOKEN": "twk_secret",
        "AWS_SECRET_ACCESS_KEY": "x",
        "LANG": "de_DE.UTF-8",
        "HTTPS_PROXY": "http://proxy:3128",
        "PATH": "/worker/bin",
    }
    env = kernel_env(ENV, [0, 3], CONTENT, source)
    assert "TANDEM_WORKER_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "twk_secret" not in "".join(env.values())
    assert env["LANG"] == "de_DE.UTF-8" and env["HTTPS_PROXY"] == "http://proxy:3128"
    assert env["PATH"].startswith("/content/.local/bin:/srv/envs/default-abc/bin:")
    assert env["PYTHONUSERBASE"] == "/content/.local" and env["PIP_USER"] == "1"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,3"
    assert kernel_env(ENV, [], CONTENT, {})["CUDA_VISIBLE_DEVICES"] == ""


def test_cgroup_files_are_read_as_the_kernel_writes_them(tmp_path: Path) -> None:
    assert cgroups.own_cgroup_paths("0::/user.slice/x\n") == {"": "/user.slice/x"}
    v1 = cgroups.own_cgroup_paths("4:memory:/a\n2:cpu,cpuacct:/b\n")
    assert v1 == {"memory": "/a", "cpu": "/b", "cpuacct": "/b"}
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (tmp_path / "memory.current").write_text("123456\n")
    group = cgroups.KernelCgroup([tmp_path], tmp_path, 2)
    assert group.oom_kills() == 1 and group.memory_bytes() == 123456
    assert cgroups.KernelCgroup([], None, 0).memory_bytes() is None


def test_rlimits_are_the_fallback_for_every_limit() -> None:
    limits = Limits(memory_mb=400, max_processes=64, disk_mb=10, cpus=1)
    assert cgroups.rlimits_for(limits) == {
        "data": 400 * 1024 * 1024,
        "nproc": 64,
        "fsize": 10 * 1024 * 1024,
    }


def test_sandbox_enter_applies_rlimits_before_the_command() -> None:
    enter = Path(cgroups.__file__).with_name("sandbox_enter.py")
    done = subprocess.run(
        [
            *(sys.executable, "-I", "-S", str(enter), "--rlimit", "fsize=4096", "--"),
            *(
                sys.executable,
                "-c",
                "import resource; print(resource.getrlimit(resource.RLIMIT_FSIZE))",
            ),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "(4096, 4096)"
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 4096  # not ours


def test_an_environment_is_named_by_what_is_in_it() -> None:
    numpy = Environment(name="default", packages=["numpy"])
    assert spec_hash(numpy, "python3") == spec_hash(
        Environment(name="x", packages=["numpy", "ipykernel"]), "python3"
    )
    assert spec_hash(numpy, "python3") != spec_hash(Environment(name="default"), "python3")
    assert spec_hash(numpy, "python3") != spec_hash(numpy, "/usr/bin/python3.12")


def test_lifeline_knows_its_parent() -> None:
    assert lifeline.parent_alive(os.getppid())
    assert not lifeline.parent_alive(os.getppid() + 100_000)
    assert lifeline.set_parent_death_signal(0)  # 0 clears it again


def test_an_environment_takes_requirements_never_pip_options() -> None:
    import pydantic
    import pytest

    assert Environment(name="x", packages=["numpy>=2", "torch[cuda]; sys_platform == 'linux'"])
    for bad in ("--index-url=http://evil.example/simple", "-e /etc", "numpy; rm -rf /"):
        with pytest.raises(pydantic.ValidationError):
            Environment(name="x", packages=[bad])
    from server.config import Settings

    with pytest.raises(pydantic.ValidationError):
        Settings(environments={"default": ["--extra-index-url=http://evil.example"]})
