"""The first step of every sandboxed kernel: join its cgroups, set its rlimits, then exec.

Run by the worker as `python -I -S sandbox_enter.py ... -- bwrap ...`, so it imports the
standard library only. It runs before the sandbox exists, with the worker's privileges:
the kernel must be inside its limits before it can fork even once, which a cgroup joined
from outside after the start could not promise.
"""

from __future__ import annotations

import os
import resource
import sys

RLIMITS = {
    "as": resource.RLIMIT_AS,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "nproc": resource.RLIMIT_NPROC,
    "core": resource.RLIMIT_CORE,
}


def main(argv: list[str]) -> None:
    if "--" not in argv:
        raise SystemExit("sandbox_enter: usage: [--cgroup PROCS] [--rlimit N=V] -- COMMAND")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    pid = str(os.getpid())
    for flag, value in zip(options[::2], options[1::2], strict=True):
        if flag == "--cgroup":
            with open(value, "w") as procs:
                procs.write(pid)
        elif flag == "--rlimit":
            name, _, limit = value.partition("=")
            resource.setrlimit(RLIMITS[name], (int(limit), int(limit)))
        elif flag == "--chown":
            owner, _, path = value.partition(":")
            os.chown(path, int(owner), int(owner))
        else:
            raise SystemExit(f"sandbox_enter: unknown option {flag}")
    os.execvp(command[0], command)  # noqa: S606  (the worker's own command line)


if __name__ == "__main__":
    main(sys.argv[1:])
