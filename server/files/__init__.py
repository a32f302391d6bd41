"""A notebook's files: the data its code reads and the results it writes, kept by the
server (the data dir, or S3-compatible object storage) and mirrored into every kernel's
working directory, /content, by the worker that runs it."""
