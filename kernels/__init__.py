"""The Tandem worker node: runs Jupyter kernels on behalf of a server it dials into.

`worker.py` keeps the connection, `kernel.py` runs one kernel through jupyter_client,
`resources.py` says what the machine has, and `messages.py` is the protocol the server
imports too.
"""
