"""The audit log of sharing and permission changes, readable by a notebook's owner."""
