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
        _pending = _signal.getitimer(_signal.ITIMER_REAL)  # the user's own alarm, if any
        _old = _signal.signal(_signal.SIGALRM, _alarm)
    except (ValueError, AttributeError, OSError):
        _old = None
    _since = _time.monotonic()
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
        # An exact str: a str subclass's own __str__ is never called.
        text = str.__str__(text) if issubclass(type(text), str) else str(text)
        return text if len(text) <= size else text[: size - 1] + "\u2026"
    def _describe(name, value):
        kind = type(value)  # never the object's own __class__
        # Even the class is the user's (a metaclass may hook any attribute): all limited.
        if _limited(lambda: issubclass(kind, skip) or kind.__module__ == "typing", True):
            return None
        qualname = _limited(lambda: _cut(kind.__qualname__, 200), "?")
        item = {"name": _cut(name, 200), "type": qualname}
        module = _limited(lambda: _cut(kind.__module__, 80), "builtins")
        if module not in ("builtins", "__main__"):
            item["type"] = _cut(module.split(".")[0] + "." + item["type"], 200)
        def _shape():
            if not _limited(lambda: isinstance(getattr(kind, "shape", None), _described), False):
                return None
            shape = _limited(lambda: value.shape, None)
            if type(shape) is tuple and len(shape) < 64 and all(type(x) is int for x in shape):
                return _cut(" \u00d7 ".join(str(x) for x in shape) or "scalar", 200)
            return None
        shape = _shape()
        if shape is None and _limited(lambda: hasattr(kind, "__len__"), False):
            size = _limited(lambda: len(value), None)
            if type(size) is int:
                shape = "len " + str(size)
        if shape is not None:
            item["shape"] = shape
        item["repr"] = _limited(lambda: _cut(repr(value), _chars), "<repr failed>")
        nbytes = None
        if _limited(lambda: isinstance(getattr(kind, "nbytes", None), _described), False):
            nbytes = _limited(lambda: value.nbytes, None)
        if type(nbytes) is not int:
            nbytes = _limited(lambda: _sys.getsizeof(value), None)
        if type(nbytes) is int and nbytes >= 0:
            item["size_bytes"] = nbytes
        return item
    hidden = set()
    try:
        _ip = _sys.modules["IPython"].get_ipython()
        hidden = set(_ip.user_ns_hidden)
    except Exception:
        pass
    skip = (_types.ModuleType, _types.FunctionType, _types.BuiltinFunctionType, type)
    _described = (property, _types.GetSetDescriptorType)
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
            if _pending[0] > 0:  # put the user's alarm back, less the time we took
                left = max(0.001, _pending[0] - (_time.monotonic() - _since))
                _signal.setitimer(_signal.ITIMER_REAL, left, _pending[1])
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
