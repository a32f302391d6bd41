"""The audit logs: sharing and permission changes per notebook (read by its owner), and
account changes (read by admins)."""
