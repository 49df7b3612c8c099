"""The ledger as an ABCI application: protobuf in, state machine, protobuf out.

State flows through three layers:

* ``committed``: what the last ``Commit`` wrote to LevelDB (with height and app hash);
* ``pending``: genesis and the finalized block not yet committed;
* ``check``: CheckTx's admission view (``ledger/admission.py``): the committed
  state plus each account's highest admitted nonce and the money its admitted
  transactions reserve. CheckTx executes nothing; it is rebased after every
  ``Commit`` and CometBFT's recheck of the remaining mempool rebuilds it.

Decoded transactions are cached by hash (``TxCache``), so a transaction's
bytes are decoded and its signature verified once whether it arrives by
CheckTx, a recheck, ProcessProposal or FinalizeBlock.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable

from abci_app import version
from abci_app.ledger import errors
from abci_app.ledger.admission import CheckState, admit
from abci_app.ledger.events import Event
from abci_app.ledger.execute import Chain, TxResult, begin_block, get_chain, put_chain, run_tx
from abci_app.ledger.genesis import GenesisError, load_genesis
from abci_app.ledger.merkle import Trie
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.params import get_params
from abci_app.ledger.proofs import PROOF_TYPE, RAW_PATH, answer_raw
from abci_app.ledger.query import run_query
from abci_app.ledger.snapshots import Apply, Offer, Restorer, SnapshotStore
from abci_app.ledger.state import State
from abci_app.ledger.store import Backend, CommittedStore, Overlay
from abci_app.ledger.tx import TxCache, decode_tx
from abci_app.pb.tendermint.abci import types_pb2 as abci
from abci_app.pb.tendermint.crypto import keys_pb2, proof_pb2
from abci_app.retention import Retention

log = logging.getLogger("gridledger.app")

APP_PROTOCOL_VERSION = 1
NEXT_NONCE_PATH = "/next_nonce/"


class LedgerApplication:
    """Answers every ABCI call; one instance per node, one call at a time."""

    def __init__(self, backend: Backend, snapshots: SnapshotStore | None = None,
                 retention: Retention | None = None) -> None:
        self.committed = CommittedStore(backend)
        self.retention = retention if retention is not None else Retention()
        """Which old blocks CometBFT may prune (the retain_height of Commit; abci_app/retention.py)."""
        self.snapshots = snapshots
        """Where this node keeps the snapshots it offers (None: it offers none, but can still restore one)."""
        self.restorer = Restorer(self.committed, on_restored=self._restored)
        self.pending: Overlay | None = None
        self.pending_height = 0
        self.pending_hash = b""
        self.pending_trie: Trie | None = None
        self.pending_digests: list[bytes] = []
        self.txs = TxCache()
        self.check: CheckState | None = CheckState(self.committed, self.txs.verifier) if self.committed.height else None

    def close(self) -> None:
        if self.snapshots is not None:
            self.snapshots.close()
        self.committed.close()

    # -- info and genesis ----------------------------------------------------------
    def info(self, req: abci.RequestInfo) -> abci.ResponseInfo:
        return abci.ResponseInfo(
            data="gridledger",
            version=version(),
            app_version=APP_PROTOCOL_VERSION,
            last_block_height=self.committed.height,
            last_block_app_hash=self.committed.app_hash,
        )

    def init_chain(self, req: abci.RequestInitChain) -> abci.ResponseInitChain:
        if self.committed.height != 0:
            raise RuntimeError("InitChain on a store that already holds committed blocks")
        initial_height = req.initial_height or 1
        overlay = Overlay(self.committed)
        put_chain(overlay, Chain(chain_id=req.chain_id, initial_height=initial_height,
                                 height=initial_height - 1, time=req.time.seconds))
        try:
            load_genesis(State(overlay), req.app_state_bytes)
        except GenesisError as exc:
            log.error("genesis rejected: %s", exc)
            raise
        self.pending = overlay
        self.pending_height = initial_height - 1
        self.pending_trie = self.committed.trie_after(None, overlay.writes)
        self.pending_hash = self.pending_trie.root_hash
        self.check = CheckState(overlay, self.txs.verifier)
        validators = genesis_validators(State(overlay))
        if validators and req.validators and _validator_set(req.validators) != _validator_set(validators):
            log.warning("genesis.json validators differ from the app_state operators; the operators' keys win")
        return abci.ResponseInitChain(app_hash=self.pending_hash, validators=validators)

    # -- mempool ---------------------------------------------------------------------
    def check_tx(self, req: abci.RequestCheckTx) -> abci.ResponseCheckTx:
        """Admission only (ledger/admission.py); a recheck finds the decoded transaction in the cache."""
        check = self.check
        if check is None:
            return abci.ResponseCheckTx(code=errors.NotFound.code, log="the chain has no genesis state yet",
                                        codespace=errors.LedgerError.codespace)
        try:
            tx = decode_tx(req.tx, check.chain_id, check.params.max_tx_bytes, self.txs)
            admit(check, tx)
        except errors.LedgerError as exc:
            if req.type == abci.RECHECK:
                self.txs.discard(hashlib.sha256(req.tx).digest())
            return abci.ResponseCheckTx(code=exc.code, log=exc.log, codespace=exc.codespace)
        except Exception as exc:  # CheckTx never fails the mempool connection for one transaction
            log.exception("CheckTx failed unexpectedly; refused with code 1")
            return abci.ResponseCheckTx(code=errors.LedgerError.code, log=f"internal error: {type(exc).__name__}",
                                        codespace=errors.LedgerError.codespace)
        return abci.ResponseCheckTx(code=0)

    # -- proposals ----------------------------------------------------------------------
    def prepare_proposal(self, req: abci.RequestPrepareProposal) -> abci.ResponsePrepareProposal:
        """Keep mempool order; drop what ProcessProposal would reject and what does not fit."""
        chain_id, max_bytes = self._chain_id_and_limit()
        chosen: list[bytes] = []
        seen: set[tuple[str, int]] = set()
        total = 0
        for raw in req.txs:
            if total + len(raw) > req.max_tx_bytes:
                continue
            try:
                tx = decode_tx(raw, chain_id, max_bytes, self.txs)
            except errors.LedgerError:
                continue
            if (tx.account, tx.nonce) in seen:
                continue
            seen.add((tx.account, tx.nonce))
            chosen.append(raw)
            total += len(raw)
        return abci.ResponsePrepareProposal(txs=chosen)

    def process_proposal(self, req: abci.RequestProcessProposal) -> abci.ResponseProcessProposal:
        """Reject a block with any transaction a correct proposer never includes.

        Stateless failures (undecodable, non-canonical, wrong chain, bad
        signature, oversized) and a repeated (account, nonce) are proposer
        faults. Stateful failures (e.g. insufficient funds after an earlier
        transaction of the block) are legitimate and get their code in
        FinalizeBlock.
        """
        chain_id, max_bytes = self._chain_id_and_limit()
        seen: set[tuple[str, int]] = set()
        for index, raw in enumerate(req.txs):
            try:
                tx = decode_tx(raw, chain_id, max_bytes, self.txs)
            except errors.LedgerError as exc:
                log.warning("rejecting proposal %s: tx %d: %s", req.hash.hex(), index, exc.log)
                return abci.ResponseProcessProposal(status=abci.ResponseProcessProposal.REJECT)
            if (tx.account, tx.nonce) in seen:
                log.warning("rejecting proposal %s: tx %d repeats (account, nonce)", req.hash.hex(), index)
                return abci.ResponseProcessProposal(status=abci.ResponseProcessProposal.REJECT)
            seen.add((tx.account, tx.nonce))
        return abci.ResponseProcessProposal(status=abci.ResponseProcessProposal.ACCEPT)

    def extend_vote(self, req: abci.RequestExtendVote) -> abci.ResponseExtendVote:
        return abci.ResponseExtendVote()

    def verify_vote_extension(self, req: abci.RequestVerifyVoteExtension) -> abci.ResponseVerifyVoteExtension:
        return abci.ResponseVerifyVoteExtension(status=abci.ResponseVerifyVoteExtension.ACCEPT)

    # -- blocks -----------------------------------------------------------------------------
    def finalize_block(self, req: abci.RequestFinalizeBlock) -> abci.ResponseFinalizeBlock:
        base = self.pending if self.pending is not None else self.committed
        block = Overlay(base)
        height, time = self._block_header(block, req)
        # The size limit ProcessProposal checked the block against: a parameter vote inside the block
        # must not fail a later transaction of the same block on a check the proposal already passed.
        max_tx_bytes = get_params(State(block)).max_tx_bytes
        block_events = begin_block(block, height, time)
        results = [self._deliver(block, raw, height, time, max_tx_bytes) for raw in req.txs]
        digests = [hashlib.sha256(raw).digest() for raw in req.txs]
        updates = [validator_update(pubkey, power) for pubkey, power in gov.take_validator_updates(State(block))]
        # The root of the state tree after this block, from its writes (Commit persists the nodes).
        trie = self.committed.trie_after(self.pending_trie if self.pending is not None else None, block.writes)
        app_hash = trie.root_hash
        if self.pending is None:
            self.pending = block
        else:
            block.merge_into(self.pending)
        self.pending_height = height
        self.pending_hash = app_hash
        self.pending_trie = trie
        self.pending_digests += digests
        return abci.ResponseFinalizeBlock(
            events=_events(block_events),
            tx_results=[
                abci.ExecTxResult(code=r.code, log=r.log, codespace=r.codespace, events=_events(r.events))
                for r in results
            ],
            app_hash=app_hash,
            validator_updates=updates,
        )

    @staticmethod
    def _block_header(block: Overlay, req: abci.RequestFinalizeBlock) -> tuple[int, int]:
        """Height and time of the block being finalized.

        CometBFT always sends the next height and a BFT time that never goes
        backwards. A header-less request (height 0, as CometBFT's ``abci-cli
        finalize_block`` sends) is taken as the next block at the previous
        block's time, so test drivers cannot break the chain's clock.
        """
        chain = get_chain(block)
        expected = chain.height + 1
        if req.height == 0:
            return expected, chain.time
        if req.height != expected:
            raise RuntimeError(f"FinalizeBlock for height {req.height}, expected {expected}")
        return req.height, req.time.seconds

    def _deliver(self, block: Overlay, raw: bytes, height: int, time: int, max_tx_bytes: int) -> TxResult:
        try:
            return run_tx(block, raw, height, time, self.txs, max_tx_bytes=max_tx_bytes)
        except errors.NODE_FAULTS:
            raise  # this node's fault, not the transaction's: stop (CometBFT replays the block) rather than diverge
        except Exception as exc:  # FinalizeBlock never raises for one bad transaction
            log.exception("transaction failed unexpectedly; rejected with code 1")
            return TxResult(code=errors.LedgerError.code, log=f"internal error: {type(exc).__name__}",
                            codespace=errors.LedgerError.codespace)

    def commit(self, req: abci.RequestCommit) -> abci.ResponseCommit:
        if self.pending is None:
            raise RuntimeError("Commit without a finalized block")
        self.committed.commit(self.pending, self.pending_height, self.pending_trie)
        self.pending = None
        self.pending_trie = None
        # Included transactions cannot be rechecked or included again: their cache entries are done.
        for digest in self.pending_digests:
            self.txs.discard(digest)
        self.pending_digests = []
        self.check = CheckState(self.committed, self.txs.verifier)
        if self.snapshots is not None:
            self.snapshots.after_commit(self.committed)  # a background thread, from a LevelDB snapshot
        return abci.ResponseCommit(retain_height=self.retention.retain_height(self.committed.height))

    # -- queries --------------------------------------------------------------------------------
    def query(self, req: abci.RequestQuery) -> abci.ResponseQuery:
        height = self.committed.height
        try:
            if req.height not in (0, height):
                raise errors.BadQuery(f"only the last committed height {height} can be queried")
            if height == 0:
                raise errors.NotFound("no block has been committed yet")
            if req.path.startswith(RAW_PATH):
                return self._raw_query(req, height)
            if req.prove:
                raise errors.BadQuery(f"proofs are given for {RAW_PATH} paths (the state's own keys and values), "
                                      "not for JSON answers; see docs/queries.md")
            if req.path.startswith(NEXT_NONCE_PATH):
                value = self._next_nonce(req.path[len(NEXT_NONCE_PATH) :])
            else:
                value = run_query(Overlay(self.committed), req.path)
        except errors.LedgerError as exc:
            return abci.ResponseQuery(code=exc.code, log=exc.log, codespace=exc.codespace, height=height)
        except Exception as exc:  # a query must never take the node down
            log.exception("query %s failed unexpectedly", req.path)
            return abci.ResponseQuery(code=errors.LedgerError.code, log=f"internal error: {type(exc).__name__}",
                                      codespace=errors.LedgerError.codespace, height=height)
        return abci.ResponseQuery(code=0, value=value, height=height, key=req.path.encode())

    def _raw_query(self, req: abci.RequestQuery, height: int) -> abci.ResponseQuery:
        """A state key or key range as stored, with a proof against the app hash of ``height`` if asked.

        The proof is checked against the app hash in the header of block
        ``height + 1`` (docs/queries.md, "Proofs").
        """
        answer = answer_raw(self.committed, req.path)
        response = abci.ResponseQuery(code=0, value=answer.value, key=answer.key, height=height)
        if not answer.found:
            response.code, response.codespace = errors.NotFound.code, errors.LedgerError.codespace
            response.log = f"key {answer.key.hex()} not found"
        if req.prove:
            response.proof_ops.CopyFrom(proof_pb2.ProofOps(ops=[
                proof_pb2.ProofOp(type=PROOF_TYPE, key=answer.proof.lo, data=answer.proof.op_data())]))
        return response

    def _next_nonce(self, account_id: str) -> bytes:
        """Node-local hint: the next nonce counting this node's pending mempool transactions.

        Not consensus state (another node's mempool may differ); it lets a
        client send several transactions before the first one commits.
        """
        next_nonce = self.check.next_nonce(account_id) if self.check is not None else None
        if next_nonce is None:
            raise errors.NotFound(f"account {account_id} not found")
        answer = {"account": account_id, "next_nonce": next_nonce}
        return json.dumps(answer, sort_keys=True, separators=(",", ":")).encode()

    # -- state sync (abci_app/ledger/snapshots.py) ----------------------------------------------
    def list_snapshots(self, req: abci.RequestListSnapshots) -> abci.ResponseListSnapshots:
        if self.snapshots is None:
            return abci.ResponseListSnapshots()
        return abci.ResponseListSnapshots(snapshots=[
            abci.Snapshot(height=s.height, format=s.format, chunks=s.chunks, hash=s.hash, metadata=s.metadata)
            for s in self.snapshots.list()])

    def offer_snapshot(self, req: abci.RequestOfferSnapshot) -> abci.ResponseOfferSnapshot:
        snapshot = req.snapshot
        result = self.restorer.offer(snapshot.height, snapshot.format, snapshot.chunks, snapshot.hash,
                                     snapshot.metadata, req.app_hash)
        return abci.ResponseOfferSnapshot(result=_OFFER[result])

    def load_snapshot_chunk(self, req: abci.RequestLoadSnapshotChunk) -> abci.ResponseLoadSnapshotChunk:
        chunk = self.snapshots.chunk(req.height, req.format, req.chunk) if self.snapshots is not None else b""
        return abci.ResponseLoadSnapshotChunk(chunk=chunk)

    def apply_snapshot_chunk(self, req: abci.RequestApplySnapshotChunk) -> abci.ResponseApplySnapshotChunk:
        outcome = self.restorer.apply(req.index, req.chunk, req.sender)
        return abci.ResponseApplySnapshotChunk(result=_APPLY[outcome.result], refetch_chunks=outcome.refetch,
                                               reject_senders=outcome.reject_senders)

    def _restored(self) -> None:
        """A snapshot is the committed state now: CheckTx admits against it; blocks go on from it."""
        self.check = CheckState(self.committed, self.txs.verifier)

    # -- helpers ------------------------------------------------------------------------------------
    def _chain_id_and_limit(self) -> tuple[str, int]:
        view = self.pending if self.pending is not None else Overlay(self.committed)
        return get_chain(view).chain_id, get_params(State(view)).max_tx_bytes


_OFFER = {Offer.ACCEPT: abci.ResponseOfferSnapshot.ACCEPT, Offer.ABORT: abci.ResponseOfferSnapshot.ABORT,
          Offer.REJECT: abci.ResponseOfferSnapshot.REJECT,
          Offer.REJECT_FORMAT: abci.ResponseOfferSnapshot.REJECT_FORMAT}
_APPLY = {Apply.ACCEPT: abci.ResponseApplySnapshotChunk.ACCEPT, Apply.ABORT: abci.ResponseApplySnapshotChunk.ABORT,
          Apply.RETRY: abci.ResponseApplySnapshotChunk.RETRY,
          Apply.REJECT_SNAPSHOT: abci.ResponseApplySnapshotChunk.REJECT_SNAPSHOT}


def genesis_validators(state: State) -> list[abci.ValidatorUpdate]:
    """The operators that run validators, as CometBFT's initial validator set."""
    return [validator_update(op.consensus_pubkey, op.power) for op in gov.iter_operators(state) if op.is_validator]


def validator_update(pubkey: bytes, power: int) -> abci.ValidatorUpdate:
    return abci.ValidatorUpdate(pub_key=keys_pb2.PublicKey(ed25519=pubkey), power=power)


def _validator_set(updates: Iterable[abci.ValidatorUpdate]) -> list[tuple[bytes, int]]:
    return sorted((u.pub_key.ed25519, u.power) for u in updates)


def _events(events: list[Event]) -> list[abci.Event]:
    return [
        abci.Event(type=e.type, attributes=[abci.EventAttribute(key=k, value=v, index=True) for k, v in e.attributes])
        for e in events
    ]
