"""Money: balances, locks, the money supply, statements, and the deposit, withdraw and transfer messages.

Only ``deposit`` and ``withdraw`` change the money supply; the LPDs act as the
settlement agents that take and make the off-chain payments. Every money
movement is journaled per account, so statements can be answered.
"""

# The messages are the module's public API for clients (the CLI, tools, tests).
from abci_app.ledger.modules.bank.msgs import Deposit, Transfer, Withdraw

__all__ = ["Deposit", "Transfer", "Withdraw"]
