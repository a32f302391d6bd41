"""Who is this: accounts, API tokens, browser sessions."""
