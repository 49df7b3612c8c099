"""The `gridledger` command-line interface."""
