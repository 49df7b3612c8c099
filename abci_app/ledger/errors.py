"""Every reason a transaction can be rejected, with a stable numeric code.

Codes are part of the wire contract (clients and `tx_search` rely on them):
never renumber, only append. The table in docs/errors.md lists them all and a
test checks that it matches this module.
"""

from __future__ import annotations

from typing import ClassVar

NODE_FAULTS: tuple[type[BaseException], ...] = (MemoryError, OSError)
"""Faults of this node (memory, disk, the store), not of the block: another node does not meet them. Taken
for a rejected transaction or a failed block step they would make this node's state differ from the
others', so they are never caught there: the node stops and CometBFT replays the block when it restarts."""


class LedgerError(Exception):
    """A transaction (or query) was rejected; nothing it did is kept."""

    code: ClassVar[int] = 1
    codespace: ClassVar[str] = "gridledger"
    summary: ClassVar[str] = "internal error"

    def __init__(self, log: str) -> None:
        super().__init__(log)
        self.log = log


def _error(name: str, code: int, summary: str) -> type[LedgerError]:
    return type(name, (LedgerError,), {"code": code, "summary": summary, "__doc__": summary})


class InvariantViolated(LedgerError):
    """A ledger invariant does not hold: a bug, never a user error (consensus code does not use ``assert``)."""

    summary: ClassVar[str] = "internal error: a ledger invariant does not hold"


# 2-19: encoding and authentication (stateless or signer-level)
MalformedTx = _error("MalformedTx", 2, "transaction bytes are not a well-formed envelope")
NonCanonicalTx = _error("NonCanonicalTx", 3, "transaction does not re-encode to the same bytes")
UnsupportedVersion = _error("UnsupportedVersion", 4, "unknown envelope format version")
WrongChainId = _error("WrongChainId", 5, "transaction is signed for another chain")
UnknownTxType = _error("UnknownTxType", 6, "unknown transaction type")
MalformedBody = _error("MalformedBody", 7, "transaction body does not match its type")
BadSignature = _error("BadSignature", 8, "Ed25519 signature does not verify")
TxTooLarge = _error("TxTooLarge", 9, "transaction exceeds the size limit")
UnknownSigner = _error("UnknownSigner", 10, "signer is not a registered account")
InactiveSigner = _error("InactiveSigner", 11, "signer account is deactivated")
StaleNonce = _error("StaleNonce", 12, "nonce is not greater than the account's last nonce")
# 13 was reserved for a repeated (account, nonce) in one block; ProcessProposal rejects
# such blocks whole and FinalizeBlock reports the repeat as StaleNonce, so it is unused.
# 20-39: authorisation and values
NotAuthorised = _error("NotAuthorised", 20, "signer's role may not send this transaction")
ValueOutOfRange = _error("ValueOutOfRange", 21, "a value is outside its allowed range")
InsufficientFunds = _error("InsufficientFunds", 22, "free balance is too small")
UnknownAccount = _error("UnknownAccount", 23, "referenced account does not exist")
AccountExists = _error("AccountExists", 24, "an account with this key already exists")
InactiveAccount = _error("InactiveAccount", 25, "referenced account is deactivated")
WrongZone = _error("WrongZone", 26, "zone is not served by the signing DSO")
UnknownMeter = _error("UnknownMeter", 27, "referenced meter does not exist")
MeterExists = _error("MeterExists", 28, "a meter with this id or key already exists")
SelfTransfer = _error("SelfTransfer", 29, "sender and recipient are the same account")
# 40-59: governance
UnknownProposal = _error("UnknownProposal", 40, "referenced proposal does not exist")
ProposalClosed = _error("ProposalClosed", 41, "proposal has already passed, failed or expired")
DuplicateVote = _error("DuplicateVote", 42, "operator already voted on this proposal")
UnknownParam = _error("UnknownParam", 43, "no such parameter")
OperatorExists = _error("OperatorExists", 44, "an operator with this name, account key or consensus key exists")
UnknownOperator = _error("UnknownOperator", 45, "no validator operator with this name")
ValidatorSetGuard = _error("ValidatorSetGuard", 46, "change would remove too much validator power at once")
# 60-79: market
UnknownOrder = _error("UnknownOrder", 60, "referenced order is not open")
SlotClosed = _error("SlotClosed", 61, "the slot's gate has closed")
SlotTooFar = _error("SlotTooFar", 62, "the slot starts too far in the future")
MisalignedSlot = _error("MisalignedSlot", 63, "slot start is not a multiple of the slot length")
PriceOffTick = _error("PriceOffTick", 64, "limit price is not a multiple of the tick size")
QuantityTooSmall = _error("QuantityTooSmall", 65, "quantity is below the minimum")
CapacityExceeded = _error("CapacityExceeded", 66, "quantity exceeds the meters' capacity for the slot")
TooManyOpenOrders = _error("TooManyOpenOrders", 67, "account already holds the maximum of open orders")
SelfTrade = _error("SelfTrade", 68, "order crosses one of the signer's own resting orders")
FillOrKillUnfilled = _error("FillOrKillUnfilled", 69, "fill-or-kill order cannot be filled in full")
PostOnlyWouldTake = _error("PostOnlyWouldTake", 70, "post-only order would trade on arrival")
OrderExpired = _error("OrderExpired", 71, "valid_until is already past")
UnsupportedTimeInForce = _error("UnsupportedTimeInForce", 72, "time-in-force not available in this matching mode")
AccountInDebt = _error("AccountInDebt", 73, "account has unpaid settlement debt")
UnknownZone = _error("UnknownZone", 74, "zone is not served by any DSO")
OfferTaken = _error("OfferTaken", 75, "the off-chain offer has already been accepted")
PriceBelowGridFee = _error("PriceBelowGridFee", 76, "a bid offer's all-in price does not cover the route's grid fee")
# 80-89: meter readings and settlement
BadReadingSignature = _error("BadReadingSignature", 80, "meter reading signature does not verify")
ReadingNotAtSlotEnd = _error("ReadingNotAtSlotEnd", 81, "reading timestamp is not a slot end")
ReadingTooEarly = _error("ReadingTooEarly", 82, "reading is for a slot that has not ended")
ReadingTooLate = _error("ReadingTooLate", 83, "reading is past the slot's settlement deadline")
StaleReading = _error("StaleReading", 84, "reading repeats or precedes the meter's last reading")
RegisterBackwards = _error("RegisterBackwards", 85, "a cumulative register value went backwards")
ReadingAboveCapacity = _error("ReadingAboveCapacity", 86, "energy exceeds the meter's capacity for the interval")
# 100+: queries
BadQuery = _error("BadQuery", 100, "unknown query path or malformed query data")
NotFound = _error("NotFound", 101, "nothing stored under this query")

# One class per code: InvariantViolated shares code 1 with its base.
ALL_ERRORS: tuple[type[LedgerError], ...] = tuple(
    sorted(
        (obj for obj in globals().values() if isinstance(obj, type) and issubclass(obj, LedgerError)
         and (obj is LedgerError or obj.code != LedgerError.code)),
        key=lambda cls: cls.code,
    )
)
