"""`python -m server` is the same as the `tandem` command."""

from server.cli import main

raise SystemExit(main())
