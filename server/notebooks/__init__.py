"""Notebooks as records: titles, owners, members and their roles, import and export."""
