"""The variable inspector's probe: code run in the kernel to describe its user variables.

It goes as the one user expression of a silent `execute_request` (no history, no count, no
output): the expression `exec`s `PROBE` in a dict of its own, so no name is left in the
user's namespace, and evaluates to a JSON string. Variables are the user's objects, so the
probe trusts none of them: every `repr`, `len` and attribute read is in a `try`, each under
a SIGALRM time limit where the kernel allows one (a `__repr__` that loops is cut off), and
every text is cut short. `variables_reply` reads the answer back with caps of its own.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from pydantic import ValidationError

from kernels import messages as m

# Seconds for one variable's description, and for the whole probe.
PER_VARIABLE_SECONDS = 0.2
TOTAL_SECONDS = 1.5
REPR_CHARS = 120

# Runs in the kernel with `_ns` (the user namespace) and the limits bound; sets `_out`.
PROBE = r"""
import json as _json, signal as _signal, sys as _sys, time as _time, types as _types
def _probe():
    class _Late(BaseException):  # past `except Exception` in a hostile __repr__
        pass
    def _alarm(signum, frame):
        raise _Late()
    try:
        _old = _signal.signal(_signal.SIGALRM, _alarm)
    except (ValueError, AttributeError, OSError):
        _old = None
    def _limited(work, default):
        if _old is not None:
            _signal.setitimer(_signal.ITIMER_REAL, _per)
        try:
            return work()
        except (Exception, _Late):
            return default
        finally:
            if _old is not None:
                _signal.setitimer(_signal.ITIMER_REAL, 0)
    def _cut(text, size):
        text = str(text)[:]  # an exact str, whatever subclass __str__ gave
        return text if len(text) <= size else text[: size - 1] + "\u2026"
    def _describe(name, value):
        kind = type(value)
        if isinstance(value, skip) or kind.__module__ == "typing":
            return None
        item = {"name": _cut(name, 200), "type": _cut(getattr(kind, "__qualname__", "?"), 200)}
        module = getattr(kind, "__module__", "builtins")
        if module not in ("builtins", "__main__") and isinstance(module, str):
            item["type"] = _cut(module.split(".")[0] + "." + item["type"], 200)
        shape = None
        if isinstance(getattr(kind, "shape", None), (property, _types.GetSetDescriptorType)):
            shape = _limited(lambda: value.shape, None)
        if isinstance(shape, tuple) and all(isinstance(x, int) for x in shape):
            item["shape"] = _cut(" \u00d7 ".join(str(x) for x in shape) or "scalar", 200)
        elif hasattr(kind, "__len__"):
            size = _limited(lambda: len(value), None)
            if isinstance(size, int):
                item["shape"] = "len " + str(size)
        item["repr"] = _cut(_limited(lambda: _cut(repr(value), _chars), "<repr failed>"), _chars)
        nbytes = None
        if isinstance(getattr(kind, "nbytes", None), (property, _types.GetSetDescriptorType)):
            nbytes = _limited(lambda: value.nbytes, None)
        if not isinstance(nbytes, int) or isinstance(nbytes, bool):
            nbytes = _limited(lambda: _sys.getsizeof(value), None)
        if isinstance(nbytes, int) and not isinstance(nbytes, bool) and nbytes >= 0:
            item["size_bytes"] = nbytes
        return item
    hidden = set()
    try:
        _ip = _sys.modules["IPython"].get_ipython()
        hidden = set(_ip.user_ns_hidden)
    except Exception:
        pass
    skip = (_types.ModuleType, _types.FunctionType, _types.BuiltinFunctionType, type)
    names = sorted(str.__str__(n) for n in list(_ns) if isinstance(n, str))
    names = [n for n in names if not n.startswith("_") and n not in hidden]
    found, truncated, began = [], False, _time.monotonic()
    try:
        for name in names:
            if len(found) >= _max or _time.monotonic() - began > _total:
                truncated = True
                break
            try:
                item = _describe(name, _ns.get(name))
            except (Exception, _Late):
                item = {"name": _cut(name, 200), "type": "?", "repr": "<could not describe>"}
            if item is None:
                continue
            found.append(item)
    finally:
        if _old is not None:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
            _signal.signal(_signal.SIGALRM, _old)
    return _json.dumps({"variables": found, "truncated": truncated})
_out = _probe()
"""


def expression() -> str:
    """The user expression that runs `PROBE` (the user's namespace is its `globals()`)."""
    bound = {
        "_per": PER_VARIABLE_SECONDS,
        "_total": TOTAL_SECONDS,
        "_max": m.MAX_VARIABLES,
        "_chars": REPR_CHARS,
    }
    return f"(lambda _g: (exec({PROBE!r}, _g), _g['_out'])[1])(dict({bound!r}, _ns=globals()))"


def variables_reply(
    kernel_id: str, request_id: str, content: dict[str, Any] | None
) -> m.VariablesReply:
    """The probe's answer from an execute_reply's content (None: busy); anything malformed
    or too large is an error, never passed on."""

    def reply(status: m.QueryStatus, **fields: Any) -> m.VariablesReply:
        return m.VariablesReply(kernel_id=kernel_id, request_id=request_id, status=status, **fields)

    if content is None:
        return reply("busy")
    result = (content.get("user_expressions") or {}).get("variables")
    if content.get("status") != "ok" or not isinstance(result, dict):
        return reply("error")
    if result.get("status") != "ok":
        return reply("error")
    plain = (result.get("data") or {}).get("text/plain")
    try:
        # IPython shows the JSON string as a Python str literal.
        text = ast.literal_eval(plain) if isinstance(plain, str) else None
        answer = json.loads(text) if isinstance(text, str) else None
        if not isinstance(answer, dict):
            return reply("error")
        listed = answer.get("variables")
        if not isinstance(listed, list):
            return reply("error")
        truncated = bool(answer.get("truncated")) or len(listed) > m.MAX_VARIABLES
        variables = [m.Variable.model_validate(item) for item in listed[: m.MAX_VARIABLES]]
    except (ValueError, SyntaxError, MemoryError, RecursionError, ValidationError):
        return reply("error")
    return reply("ok", variables=variables, truncated=truncated)
