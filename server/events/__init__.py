"""What is not in the document: a JSON event channel per notebook, the typed events it
carries (`types`), and the in-process bus that feeds it (`bus`).

    members.changed          someone's access changed: `members`, `changed` {username, role}
    sessions.ended           (not sent) someone's other sign-ins ended: their sockets close
                             (1012) and reconnect with the credential they still hold
    notebook.renamed         `title`
    notebook.deleted         every socket of the notebook closes (4404)
    runtime.status           `runtime` (the runtime's status, as GET .../runtime answers)
    runtime.warning          a limit stops the runtime soon: `reason`, `seconds_left`, `deadline`
    kernel.input_requested   a cell waits for input: `cell_id`, `username`, `prompt`, `password`
    kernel.input_answered    `cell_id`
    widget.comm              a kernel widget's comm message: `seq`, `msg_type`, `comm_id`,
                             `data`, `metadata`, `buffers`, `parent_msg_id`
    widget.reset             the widgets' kernel is gone: `seq`
    thread.created           `thread`
    thread.updated           `thread`
    thread.orphaned          the threads' cells were deleted: `thread_ids`, `cell_ids`
    thread.restored          the cells came back: `thread_ids`, `cell_ids`
    files.changed            `action`, `by`, and per action `path`, `file`, `replaced`, `to`,
                             `paths`, `version`
    files.refused            a file the runtime wrote was not kept: `path`, `reason`

Each is sent as `{"type", "notebook_id", ...}`, after the socket's own `hello`.
"""
