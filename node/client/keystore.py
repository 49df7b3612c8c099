"""Encrypted keystore: one passphrase-protected JSON file per key.

Layout: ``<dir>/<name>.json``, directory mode 0700, files mode 0600, each file
written to a temporary name first and then published atomically, so a crash
never leaves a half-written key behind.

File format (version 1)::

    {
      "version": 1,
      "name": "alice",
      "kind": "account",                       # or "meter"
      "pubkey": "<64 hex>",                    # Ed25519 public key
      "account": "<40 hex>",                   # account id; null for meter keys
      "created": "2025-01-31T12:00:00Z",       # wall clock, informational only
      "kdf": {"name": "argon2id", "salt": "<32 hex>", "length": 32,
              "memory_cost": 65536, "iterations": 3, "lanes": 4},
      "cipher": {"name": "chacha20poly1305", "nonce": "<24 hex>"},
      "check": "<64 hex>",                     # HMAC of the derived key, see below
      "ciphertext": "<96 hex>"                 # the encrypted 32-byte seed + tag
    }

Key derivation: Argon2id (RFC 9106), parameters stored per file so they can
be raised later without breaking existing keys. Production parameters are
RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes); they take
about 0.15-0.2 s per derivation on a 2-core machine. ``GRIDLEDGER_KDF_FAST=1``
(TEST ONLY) makes *new* files use a trivial cost so test suites run fast;
never set it for real keys.

Encryption: ChaCha20-Poly1305 with a random nonce; the associated data is the
canonical JSON of every clear field (everything but the ciphertext), so
editing the name, kind, pubkey, KDF parameters or anything else makes
decryption fail.

``check`` tells a wrong passphrase apart from a modified file: it is
HMAC-SHA256(derived key, fixed label). It lets an attacker test passphrases
no faster than the AEAD tag already does (each guess still costs one Argon2id
run).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from abci_app.ledger.crypto import SigningKey, account_id

FORMAT_VERSION = 1
KINDS = ("account", "meter")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
SEED_BYTES = 32
EXPORT_FORMAT = "gridledger-key-export/1"

KDF_NAME = "argon2id"
CIPHER_NAME = "chacha20poly1305"
# RFC 9106 section 4, second recommended option: memory in KiB.
PRODUCTION_KDF = {"memory_cost": 64 * 1024, "iterations": 3, "lanes": 4}
# TEST ONLY (GRIDLEDGER_KDF_FAST=1): Argon2's minimum memory, one pass.
FAST_KDF = {"memory_cost": 8, "iterations": 1, "lanes": 1}
FAST_ENV = "GRIDLEDGER_KDF_FAST"
# Upper bounds accepted when reading a file: a tampered file must not make us
# allocate unbounded memory or spin for hours before the check fails.
_MAX_KDF = {"memory_cost": 2 * 1024 * 1024, "iterations": 64, "lanes": 64}
_SALT_BYTES = 16
_NONCE_BYTES = 12
_CHECK_LABEL = b"gridledger keystore passphrase check v1"


class KeystoreError(Exception):
    """Base of every keystore error; the message is fit for end users."""


class InvalidKeyName(KeystoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"invalid key name {name!r}: use 1-64 of a-z 0-9 . _ - starting with a letter or digit")


class KeyNotFound(KeystoreError):
    def __init__(self, name: str, directory: Path) -> None:
        super().__init__(f"no key named {name!r} in {directory}")


class KeyExists(KeystoreError):
    def __init__(self, name: str, directory: Path) -> None:
        super().__init__(f"a key named {name!r} already exists in {directory}")


class WrongPassphrase(KeystoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"wrong passphrase for key {name!r}")


class KeystoreCorrupt(KeystoreError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"key file {path} is corrupt or was modified: {reason}")


class BadImportFile(KeystoreError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot import {path}: {reason}")


class UnknownAccount(KeystoreError):
    """Text that is neither an id (or public key) nor the name of a key in the keyring."""


@dataclass(frozen=True)
class KeyInfo:
    """The public (clear-text) part of a key file."""

    name: str
    kind: str
    pubkey: str
    account: str | None
    created: str
    version: int
    kdf: dict[str, Any]
    path: Path

    def record(self) -> dict[str, Any]:
        """Public fields for display; the salt is omitted as noise."""
        kdf = {k: v for k, v in self.kdf.items() if k != "salt"}
        return {"name": self.name, "kind": self.kind, "account": self.account, "pubkey": self.pubkey,
                "created": self.created, "version": self.version, "kdf": kdf, "file": str(self.path)}


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid key name, else raise InvalidKeyName."""
    if NAME_PATTERN.fullmatch(name) is None:
        raise InvalidKeyName(name)
    return name


def fast_kdf_requested() -> bool:
    """True when the TEST-ONLY cheap KDF is switched on."""
    return os.environ.get(FAST_ENV) == "1"


class Keystore:
    """A directory of encrypted key files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # --- queries -----------------------------------------------------------

    def path_of(self, name: str) -> Path:
        return self.directory / f"{validate_name(name)}.json"

    def exists(self, name: str) -> bool:
        return self.path_of(name).exists()

    def show(self, name: str) -> KeyInfo:
        """Public info of one key (no passphrase needed)."""
        return _info(self._read(name), self.path_of(name))

    def scan(self) -> tuple[list[KeyInfo], list[KeystoreCorrupt]]:
        """All keys sorted by name, plus the files that could not be read.

        Corrupt files are returned rather than raised so one damaged file does
        not hide every other key.
        """
        keys: list[KeyInfo] = []
        problems: list[KeystoreCorrupt] = []
        for name in self._names():
            try:
                keys.append(self.show(name))
            except KeystoreCorrupt as exc:
                problems.append(exc)
        return keys, problems

    def list_keys(self) -> list[KeyInfo]:
        """All keys sorted by name; raises KeystoreCorrupt on the first bad file."""
        keys, problems = self.scan()
        if problems:
            raise problems[0]
        return keys

    def load(self, name: str, passphrase: str) -> SigningKey:
        """Decrypt a key."""
        doc = self._read(name)
        path = self.path_of(name)
        key = _derive(passphrase, doc["kdf"])
        if not hmac.compare_digest(_check(key), bytes.fromhex(doc["check"])):
            raise WrongPassphrase(name)
        try:
            seed = ChaCha20Poly1305(key).decrypt(bytes.fromhex(doc["cipher"]["nonce"]),
                                                 bytes.fromhex(doc["ciphertext"]), _associated_data(doc))
        except InvalidTag:
            raise KeystoreCorrupt(path, "authentication failed") from None
        signing_key = SigningKey.from_seed(seed)
        if signing_key.pubkey.hex() != doc["pubkey"]:
            raise KeystoreCorrupt(path, "the decrypted key does not match the stored public key")
        return signing_key

    # --- changes -----------------------------------------------------------

    def generate(self, name: str, passphrase: str, kind: str = "account") -> KeyInfo:
        """Create and store a fresh random key."""
        return self.add(name, passphrase, SigningKey.generate(), kind)

    def add(self, name: str, passphrase: str, key: SigningKey, kind: str = "account") -> KeyInfo:
        """Encrypt ``key`` under ``passphrase`` and store it as ``name``."""
        path = self.path_of(name)
        if kind not in KINDS:
            raise KeystoreError(f"key kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if not passphrase:
            raise KeystoreError("the passphrase must not be empty")
        if path.exists():
            raise KeyExists(name, self.directory)
        doc = _encrypt(name, kind, key, passphrase, _new_kdf_params())
        self._ensure_directory()
        _publish(path, _dumps(doc), self.directory)
        return _info(doc, path)

    def import_file(self, name: str, passphrase: str, source: Path, kind: str | None = None) -> KeyInfo:
        """Store a key read from an export document or a raw hex seed file."""
        seed, source_kind = read_import_file(source)
        if kind is not None and source_kind is not None and kind != source_kind:
            raise BadImportFile(source, f"it holds a {source_kind} key, not a {kind} key (omit --kind)")
        return self.add(name, passphrase, SigningKey.from_seed(seed), kind or source_kind or "account")

    def export(self, name: str, passphrase: str) -> dict[str, Any]:
        """The decrypted key as an export document (contains the private seed!)."""
        info = self.show(name)
        key = self.load(name, passphrase)
        return {"format": EXPORT_FORMAT, "name": info.name, "kind": info.kind, "pubkey": info.pubkey,
                "account": info.account, "seed": key.seed().hex()}

    def delete(self, name: str) -> None:
        """Remove a key file for good."""
        path = self.path_of(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise KeyNotFound(name, self.directory) from None

    # --- internals ---------------------------------------------------------

    def _names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        stems = (p.stem for p in self.directory.glob("*.json"))
        return sorted(stem for stem in stems if NAME_PATTERN.fullmatch(stem))

    def _read(self, name: str) -> dict[str, Any]:
        path = self.path_of(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyNotFound(name, self.directory) from None
        except UnicodeDecodeError:
            raise KeystoreCorrupt(path, "not UTF-8 text") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeystoreCorrupt(path, f"not JSON ({exc.msg})") from None
        if not isinstance(doc, dict):
            raise KeystoreCorrupt(path, "not a JSON object")
        _validate(doc, name, path)
        return doc

    def _ensure_directory(self) -> None:
        # mkdir's mode is filtered by the umask, which can only remove bits,
        # so a new directory is at most 0700. An existing one is left alone.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)


# --- names for ids ---------------------------------------------------------------


def resolve_account(text: str, keyring_dir: Path) -> str:
    """An account id, or the account of a key in the keyring (no passphrase needed)."""
    if len(text) == 40 and all(c in "0123456789abcdef" for c in text):
        return text
    try:
        info = Keystore(keyring_dir.expanduser()).show(text)
    except KeystoreError:
        raise UnknownAccount(f"{text!r} is neither a 40-hex account id nor a key in {keyring_dir}") from None
    return account_id(bytes.fromhex(info.pubkey))


def resolve_pubkey(text: str, keyring_dir: Path) -> bytes:
    """A 64-hex public key, or the public key of a key in the keyring."""
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return bytes.fromhex(text)
    try:
        return bytes.fromhex(Keystore(keyring_dir.expanduser()).show(text).pubkey)
    except KeystoreError:
        raise UnknownAccount(f"{text!r} is neither a 64-hex public key nor a key in {keyring_dir}") from None


# --- file format ---------------------------------------------------------------


def _new_kdf_params() -> dict[str, Any]:
    cost = FAST_KDF if fast_kdf_requested() else PRODUCTION_KDF
    return {"name": KDF_NAME, "salt": secrets.token_bytes(_SALT_BYTES).hex(), "length": 32, **cost}


def _derive(passphrase: str, kdf: dict[str, Any]) -> bytes:
    """Argon2id with the parameters recorded in the file."""
    return Argon2id(salt=bytes.fromhex(kdf["salt"]), length=kdf["length"], iterations=kdf["iterations"],
                    lanes=kdf["lanes"], memory_cost=kdf["memory_cost"]).derive(passphrase.encode("utf-8"))


def _check(key: bytes) -> bytes:
    return hmac.new(key, _CHECK_LABEL, hashlib.sha256).digest()


def _associated_data(doc: dict[str, Any]) -> bytes:
    """Canonical JSON of every clear field: binds the header to the ciphertext."""
    header = {k: v for k, v in doc.items() if k != "ciphertext"}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _encrypt(name: str, kind: str, key: SigningKey, passphrase: str, kdf: dict[str, Any]) -> dict[str, Any]:
    derived = _derive(passphrase, kdf)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    doc: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "name": name,
        "kind": kind,
        "pubkey": key.pubkey.hex(),
        "account": key.account if kind == "account" else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kdf": kdf,
        "cipher": {"name": CIPHER_NAME, "nonce": nonce.hex()},
        "check": _check(derived).hex(),
    }
    doc["ciphertext"] = ChaCha20Poly1305(derived).encrypt(nonce, key.seed(), _associated_data(doc)).hex()
    return doc


def _info(doc: dict[str, Any], path: Path) -> KeyInfo:
    return KeyInfo(name=doc["name"], kind=doc["kind"], pubkey=doc["pubkey"], account=doc["account"],
                   created=doc["created"], version=doc["version"], kdf=dict(doc["kdf"]), path=path)


def _validate(doc: dict[str, Any], name: str, path: Path) -> None:
    """Structural checks before any decryption, each with a precise reason."""
    reason = _problem(doc, name)
    if reason is not None:
        raise KeystoreCorrupt(path, reason)


def _problem(doc: dict[str, Any], name: str) -> str | None:
    missing = {"version", "name", "kind", "pubkey", "account", "created", "kdf", "cipher", "check",
               "ciphertext"} - set(doc)
    if missing:
        return f"missing field(s) {', '.join(sorted(missing))}"
    if doc["version"] != FORMAT_VERSION:
        return f"unsupported format version {doc['version']!r} (this gridledger reads version {FORMAT_VERSION})"
    if doc["name"] != name:
        return f"it holds key {doc['name']!r}, but the file is named {name!r}"
    if doc["kind"] not in KINDS:
        return f"unknown kind {doc['kind']!r}"
    if not _is_hex(doc["pubkey"], 32):
        return "pubkey is not 32 bytes of hex"
    expected_account = account_id(bytes.fromhex(doc["pubkey"])) if doc["kind"] == "account" else None
    if doc["account"] != expected_account:
        return "account id does not match the public key"
    if not isinstance(doc["created"], str):
        return "created is not a string"
    return _kdf_problem(doc["kdf"]) or _cipher_problem(doc)


def _kdf_problem(kdf: Any) -> str | None:
    if not isinstance(kdf, dict) or kdf.get("name") != KDF_NAME:
        return f"unsupported KDF (expected {KDF_NAME})"
    if not _is_hex(kdf.get("salt"), None) or kdf.get("length") != 32:
        return "bad KDF salt or length"
    for field, limit in _MAX_KDF.items():
        value = kdf.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            return f"KDF parameter {field} missing or out of range"
    if kdf["memory_cost"] < 8 * kdf["lanes"]:
        return "KDF memory_cost below Argon2's minimum of 8 KiB per lane"
    return None


def _cipher_problem(doc: dict[str, Any]) -> str | None:
    cipher = doc["cipher"]
    if not isinstance(cipher, dict) or cipher.get("name") != CIPHER_NAME:
        return f"unsupported cipher (expected {CIPHER_NAME})"
    if not _is_hex(cipher.get("nonce"), _NONCE_BYTES):
        return "bad nonce"
    if not _is_hex(doc["check"], 32):
        return "bad passphrase check value"
    if not _is_hex(doc["ciphertext"], SEED_BYTES + 16):
        return "ciphertext has the wrong length"
    return None


def _is_hex(value: Any, size: int | None) -> bool:
    """Lower-case hex string of exactly ``size`` bytes (any non-zero size if None)."""
    if not isinstance(value, str) or not value or len(value) % 2:
        return False
    if size is not None and len(value) != 2 * size:
        return False
    return all(c in "0123456789abcdef" for c in value)


def _dumps(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


# --- files ---------------------------------------------------------------------


def _publish(path: Path, data: bytes, directory: Path) -> None:
    """Write ``data`` to a 0600 temp file, then move it to ``path`` atomically.

    A hard link publishes without ever overwriting: two concurrent `add`s of
    the same name cannot clobber a key (losing a key loses its funds). File
    systems without hard links fall back to check-then-os.replace.
    """
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        write_private(tmp, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise KeyExists(path.stem, directory) from None
        except OSError:
            if path.exists():
                raise KeyExists(path.stem, directory) from None
            os.replace(tmp, path)
        _fsync_directory(directory)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` (must not exist) with mode 0600 and durably write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask may have removed bits we rely on for reading back
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- import --------------------------------------------------------------------


def read_import_file(path: Path) -> tuple[bytes, str | None]:
    """Seed and kind (None if unknown) from an export document or a hex seed file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise BadImportFile(path, "no such file") from None
    except UnicodeDecodeError:
        raise BadImportFile(path, "not a text file") from None
    if text.startswith("{"):
        return _seed_from_export(path, text)
    seed_hex = text.lower()
    if not _is_hex(seed_hex, SEED_BYTES):
        raise BadImportFile(path, "expected an export file or 64 hex characters (a 32-byte seed)")
    return bytes.fromhex(seed_hex), None


def _seed_from_export(path: Path, text: str) -> tuple[bytes, str | None]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadImportFile(path, f"not JSON ({exc.msg})") from None
    if isinstance(doc, dict) and "ciphertext" in doc:
        raise BadImportFile(path, "this is an encrypted keystore file; copy it into the keyring directory instead")
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise BadImportFile(path, f"not a {EXPORT_FORMAT} document")
    if not _is_hex(doc.get("seed"), SEED_BYTES):
        raise BadImportFile(path, "seed is not 32 bytes of hex")
    seed = bytes.fromhex(doc["seed"])
    if "pubkey" in doc and SigningKey.from_seed(seed).pubkey.hex() != doc["pubkey"]:
        raise BadImportFile(path, "the seed does not match the recorded public key")
    kind = doc.get("kind")
    if kind is not None and kind not in KINDS:
        raise BadImportFile(path, f"unknown kind {kind!r}")
    return seed, kind
