"""gridledger's replicated state machine and the ABCI 2.0 server that carries it."""
