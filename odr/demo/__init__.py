"""The demo start-up (``odr demo``): provinces, accounts, history and a published evaluation."""
