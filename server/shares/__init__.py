"""Share links: capabilities that give a role on one notebook to whoever opens them."""
