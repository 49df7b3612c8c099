"""Drive the ledger application in-process, exactly as CometBFT would, without CometBFT."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from abci_app.app import LedgerApplication
from abci_app.ledger import errors
from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.msg import Msg
from abci_app.ledger.store import Backend, MemoryBackend
from abci_app.ledger.tx import encode_tx
from abci_app.pb.tendermint.abci import types_pb2 as abci

CHAIN_ID = "test-chain"
GENESIS_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z
ZONE_A, ZONE_B = "zone-a", "zone-b"


def seeded_key(name: str) -> SigningKey:
    """A deterministic key per name, so app hashes are comparable across runs."""
    return SigningKey.from_seed(name.encode().ljust(32, b"\x00")[:32])


def default_app_state(keys: dict[str, SigningKey]) -> dict[str, Any]:
    """Two DSOs (one zone each), two LPDs, three funded participants."""
    return {
        "params": {"currency": "EUR", "currency_exponent": 6},
        "operators": [
            {"name": "dso-a", "role": "dso", "pubkey": keys["dso"].pubkey.hex(), "zones": [ZONE_A], "power": 10},
            {"name": "dso-b", "role": "dso", "pubkey": keys["dso_b"].pubkey.hex(), "zones": [ZONE_B], "power": 10},
            {"name": "lpd-a", "role": "lpd", "pubkey": keys["lpd"].pubkey.hex(), "zones": [], "power": 10},
            {"name": "lpd-b", "role": "lpd", "pubkey": keys["lpd_b"].pubkey.hex(), "zones": [], "power": 10},
        ],
        "participants": [
            {"pubkey": keys["alice"].pubkey.hex(), "role": "prosumer", "zone": ZONE_A, "dso": "dso-a",
             "balance": 10_000_000},
            {"pubkey": keys["bob"].pubkey.hex(), "role": "consumer", "zone": ZONE_A, "dso": "dso-a",
             "balance": 10_000_000},
            {"pubkey": keys["carol"].pubkey.hex(), "role": "producer", "zone": ZONE_B, "dso": "dso-b",
             "balance": 10_000_000},
        ],
    }


@dataclass
class Chain:
    """A chain of one in-process application; every block is finalized and committed."""

    app_state: dict[str, Any] | None = None
    backend: Backend | None = None
    chain_id: str = CHAIN_ID
    time: int = GENESIS_TIME
    keys: dict[str, SigningKey] = field(default_factory=dict)
    nonces: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("dso", "dso_b", "lpd", "lpd_b", "alice", "bob", "carol", "dave", "erin"):
            self.keys.setdefault(name, seeded_key(name))
        if self.app_state is None:
            self.app_state = default_app_state(self.keys)
        self.app = LedgerApplication(self.backend or MemoryBackend())
        self.height = 0
        req = abci.RequestInitChain(chain_id=self.chain_id, app_state_bytes=json.dumps(self.app_state).encode(),
                                    initial_height=1)
        req.time.seconds = self.time
        self.genesis_hash = self.app.init_chain(req).app_hash

    # -- transactions ------------------------------------------------------------------
    def sign(self, signer: str | SigningKey, msg: Msg, nonce: int | None = None) -> bytes:
        key = self.keys[signer] if isinstance(signer, str) else signer
        if nonce is None:
            nonce = self.nonces.get(key.account, 0) + 1
        self.nonces[key.account] = max(nonce, self.nonces.get(key.account, 0))
        return encode_tx(self.chain_id, msg, key, nonce)

    def check(self, raw: bytes) -> abci.ResponseCheckTx:
        return self.app.check_tx(abci.RequestCheckTx(tx=raw))

    def block(self, txs: list[bytes] | None = None, dt: int = 5) -> abci.ResponseFinalizeBlock:
        """Finalize and commit one block ``dt`` seconds after the previous one."""
        self.height += 1
        self.time += dt
        req = abci.RequestFinalizeBlock(txs=txs or [], height=self.height)
        req.time.seconds = self.time
        response = self.app.finalize_block(req)
        self.app.commit(abci.RequestCommit())
        return response

    def deliver(self, signer: str | SigningKey, msg: Msg, nonce: int | None = None) -> abci.ExecTxResult:
        """One transaction in its own block; returns its result."""
        result: abci.ExecTxResult = self.block([self.sign(signer, msg, nonce)]).tx_results[0]
        return result

    # -- queries ----------------------------------------------------------------------
    def query(self, path: str) -> Any:
        response = self.app.query(abci.RequestQuery(path=path))
        if response.code != 0:
            raise LookupError(f"query {path} failed with code {response.code}: {response.log}")
        return json.loads(response.value)

    def account(self, name_or_id: str) -> Any:
        account_id = self.keys[name_or_id].account if name_or_id in self.keys else name_or_id
        return self.query(f"/account/{account_id}")

    def id(self, name: str) -> str:
        return self.keys[name].account


def events_of(result: Any, event_type: str) -> list[dict[str, str]]:
    """Attributes of every event of one type in a tx or block result."""
    return [{a.key: a.value for a in e.attributes} for e in result.events if e.type == event_type]


# -- assertions shared by the per-message tests ------------------------------------
def snapshot(chain: Chain) -> dict[str, Any]:
    """Everything the queries show that a transaction could change."""
    accounts = {}
    for name in chain.keys:
        try:
            accounts[name] = chain.account(name)
        except LookupError:
            accounts[name] = None
    return {
        "accounts": accounts,
        "supply": chain.query("/supply"),
        "params": chain.query("/params"),
        "operators": chain.query("/operators"),
        "proposals": chain.query("/proposals"),
        "zones": [chain.query(f"/participants/{zone}") for zone in (ZONE_A, ZONE_B)],
        "meters": [chain.query(f"/meters/{key.account}") for key in chain.keys.values()],
    }


def nonce_spent(before: dict[str, Any], name: str, nonce: int) -> dict[str, Any]:
    """``before`` with only the signer's nonce advanced (the documented nonce rule)."""
    expected = copy.deepcopy(before)
    expected["accounts"][name]["nonce"] = nonce
    return expected


def rejected(chain: Chain, signer: str, msg: Msg, error: type[errors.LedgerError], *, spends_nonce: bool) -> None:
    """Deliver ``msg``; assert its code and that nothing but (maybe) the nonce changed."""
    before = snapshot(chain)
    result = chain.deliver(signer, msg)
    assert result.code == error.code, result.log
    expected = nonce_spent(before, signer, chain.nonces[chain.id(signer)]) if spends_nonce else before
    assert snapshot(chain) == expected
    assert not result.events
