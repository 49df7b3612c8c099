"""`gridledger keys` and the encrypted keystore behind it."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from abci_app.ledger.crypto import SigningKey
from cli.main import app
from node.client import keystore
from node.client.keystore import KeyExists, KeyNotFound, Keystore, KeystoreCorrupt, WrongPassphrase

PASS = "correct horse battery staple"
RECORD_KEYS = ["account", "created", "file", "kdf", "kind", "name", "pubkey", "version"]

runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap KDF, and no passphrase or keyring leaking in from the developer's shell."""
    monkeypatch.setenv("GRIDLEDGER_KDF_FAST", "1")
    monkeypatch.delenv("GRIDLEDGER_PASSPHRASE", raising=False)
    monkeypatch.delenv("GRIDLEDGER_KEYRING_DIR", raising=False)


@pytest.fixture
def ring(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text(PASS + "\nsecond line is ignored\n")
    return path


def run(ring: Path, *args: str, passfile: Path | None = None, input: str | None = None) -> Result:
    extra = ["--keyring-dir", str(ring)]
    if passfile is not None:
        extra += ["--passphrase-file", str(passfile)]
    return runner.invoke(app, ["keys", *args, *extra], input=input)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def assert_user_error(result: Result, fragment: str) -> None:
    """Exit 2, one plain line on stderr, no traceback."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and fragment in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def seed_of(ring: Path, name: str) -> str:
    return Keystore(ring).load(name, PASS).seed().hex()


# --- CLI: happy paths --------------------------------------------------------------


def test_add_list_show(ring: Path, passfile: Path) -> None:
    added = as_json(run(ring, "add", "alice", "-o", "json", passfile=passfile))
    assert sorted(added) == RECORD_KEYS
    assert added["kind"] == "account" and added["name"] == "alice"
    assert added["account"] == SigningKey.from_seed(bytes.fromhex(seed_of(ring, "alice"))).account
    as_json(run(ring, "add", "meter-1", "--kind", "meter", "-o", "json", passfile=passfile))

    listed = as_json(run(ring, "list", "-o", "json"))
    assert [k["name"] for k in listed] == ["alice", "meter-1"]
    assert all(sorted(k) == RECORD_KEYS for k in listed)
    assert listed[1]["account"] is None and listed[1]["kind"] == "meter"

    shown = as_json(run(ring, "show", "alice", "-o", "json"))
    assert shown == added
    assert "salt" not in shown["kdf"]

    table = run(ring, "list")
    assert table.exit_code == 0
    assert added["account"] in table.stdout and added["pubkey"] in table.stdout  # never truncated


def test_json_output_is_sorted_and_stable(ring: Path, passfile: Path) -> None:
    first = run(ring, "add", "alice", "-o", "json", passfile=passfile).stdout
    assert list(json.loads(first)) == RECORD_KEYS
    assert run(ring, "show", "alice", "-o", "json").stdout == first


def test_files_are_private(ring: Path, passfile: Path) -> None:
    assert run(ring, "add", "alice", passfile=passfile).exit_code == 0
    assert stat.S_IMODE(ring.stat().st_mode) == 0o700
    assert stat.S_IMODE((ring / "alice.json").stat().st_mode) == 0o600
    assert [p.name for p in ring.iterdir()] == ["alice.json"]  # no temp file left behind


def test_export_import_round_trip(ring: Path, passfile: Path, tmp_path: Path) -> None:
    alice = as_json(run(ring, "add", "alice", "--kind", "meter", "-o", "json", passfile=passfile))
    exported = tmp_path / "alice-export.json"
    result = run(ring, "export", "alice", "--out", str(exported), passfile=passfile)
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    assert seed_of(ring, "alice") not in result.stdout  # the seed went to the file only

    bob = as_json(run(ring, "import", "bob", str(exported), "-o", "json", passfile=passfile))
    assert bob["pubkey"] == alice["pubkey"]
    assert bob["kind"] == "meter"  # taken from the export document
    assert seed_of(ring, "bob") == seed_of(ring, "alice")


def test_import_raw_seed_gives_same_account(ring: Path, passfile: Path, tmp_path: Path) -> None:
    alice = as_json(run(ring, "add", "alice", "-o", "json", passfile=passfile))
    stdout_export = run(ring, "export", "alice", passfile=passfile)
    document = as_json(stdout_export)
    assert document["format"] == keystore.EXPORT_FORMAT and document["account"] == alice["account"]
    raw = tmp_path / "seed.hex"
    raw.write_text(document["seed"].upper() + "\n")
    carol = as_json(run(ring, "import", "carol", str(raw), "-o", "json", passfile=passfile))
    assert carol["account"] == alice["account"] and carol["kind"] == "account"


def test_export_never_overwrites(ring: Path, passfile: Path, tmp_path: Path) -> None:
    run(ring, "add", "alice", passfile=passfile)
    target = tmp_path / "existing"
    target.write_text("precious")
    assert_user_error(run(ring, "export", "alice", "--out", str(target), passfile=passfile), "already exists")
    assert target.read_text() == "precious"


def test_env_passphrase(ring: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", PASS)
    assert run(ring, "add", "alice").exit_code == 0
    assert Keystore(ring).load("alice", PASS).pubkey.hex() == Keystore(ring).show("alice").pubkey


def test_passphrase_file_beats_env(ring: Path, passfile: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", "from-env")
    assert run(ring, "add", "alice", passfile=passfile).exit_code == 0
    Keystore(ring).load("alice", PASS)  # the file's first line, not the env var


def test_interactive_prompt_confirms_and_hides(ring: Path) -> None:
    result = run(ring, "add", "alice", input=f"{PASS}\n{PASS}\n")
    assert result.exit_code == 0, result.output
    assert PASS not in result.output
    Keystore(ring).load("alice", PASS)


def test_no_passphrase_available_is_a_user_error(ring: Path) -> None:
    assert_user_error(run(ring, "add", "alice", input=""), "aborted")
    assert not (ring / "alice.json").exists()


def test_empty_passphrase_is_refused(ring: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert_user_error(run(ring, "add", "alice", passfile=empty), "empty")


def test_private_key_never_printed(ring: Path, passfile: Path) -> None:
    outputs = [run(ring, "add", "alice", passfile=passfile).output,
               run(ring, "add", "bob", "-o", "json", passfile=passfile).output]
    for fmt in ("table", "json"):
        outputs += [run(ring, "list", "-o", fmt).output, run(ring, "show", "alice", "-o", fmt).output,
                    run(ring, "show", "bob", "-o", fmt).output]
    seeds = [seed_of(ring, "alice"), seed_of(ring, "bob")]
    for seed in seeds:
        assert not any(seed in text for text in outputs)
        assert not any(seed in p.read_text() for p in ring.iterdir())  # nor stored in clear


def test_delete(ring: Path, passfile: Path) -> None:
    run(ring, "add", "alice", passfile=passfile)
    assert_user_error(run(ring, "delete", "alice", input="n\n"), "not deleted")
    assert (ring / "alice.json").exists()
    assert run(ring, "delete", "alice", "--yes").exit_code == 0
    assert not (ring / "alice.json").exists()
    assert_user_error(run(ring, "delete", "alice", "--yes"), "no key named 'alice'")


def test_every_command_has_an_example() -> None:
    for command in ("add", "list", "show", "import", "export", "delete"):
        result = runner.invoke(app, ["keys", command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.stdout, command


def test_fast_kdf_warns(ring: Path, passfile: Path) -> None:
    assert "tests only" in run(ring, "add", "alice", passfile=passfile).stderr


# --- CLI: user errors ------------------------------------------------------------------


def test_wrong_passphrase(ring: Path, passfile: Path, tmp_path: Path) -> None:
    run(ring, "add", "alice", passfile=passfile)
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    result = run(ring, "export", "alice", passfile=wrong)
    assert_user_error(result, "wrong passphrase for key 'alice'")
    assert result.stdout == ""


def test_unknown_key(ring: Path, passfile: Path) -> None:
    assert_user_error(run(ring, "show", "nobody"), "no key named 'nobody'")
    assert_user_error(run(ring, "export", "nobody", passfile=passfile), "no key named 'nobody'")


def test_duplicate_name(ring: Path, passfile: Path, tmp_path: Path) -> None:
    run(ring, "add", "alice", passfile=passfile)
    before = (ring / "alice.json").read_bytes()
    assert_user_error(run(ring, "add", "alice", passfile=passfile), "already exists")
    raw = tmp_path / "seed.hex"
    raw.write_text("11" * 32)
    assert_user_error(run(ring, "import", "alice", str(raw), passfile=passfile), "already exists")
    assert (ring / "alice.json").read_bytes() == before


@pytest.mark.parametrize("name", ["Alice", "_x", ".hidden", "a/b", "a" * 65, ""])
def test_bad_name(ring: Path, passfile: Path, name: str) -> None:
    assert_user_error(run(ring, "add", name, passfile=passfile), "invalid key name")


def test_bad_import_file(ring: Path, passfile: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("abcd\n")
    assert_user_error(run(ring, "import", "x", str(junk), passfile=passfile), "64 hex characters")
    assert_user_error(run(ring, "import", "x", str(tmp_path / "missing"), passfile=passfile), "no such file")


def test_tampered_file_is_rejected(ring: Path, passfile: Path) -> None:
    run(ring, "add", "alice", passfile=passfile)
    _edit(ring / "alice.json", ciphertext=_flip_first_hex_digit)
    result = run(ring, "export", "alice", passfile=passfile)
    assert_user_error(result, "corrupt or was modified")
    assert result.stdout == ""


def test_corrupt_file_does_not_hide_other_keys(ring: Path, passfile: Path) -> None:
    run(ring, "add", "alice", passfile=passfile)
    run(ring, "add", "bob", passfile=passfile)
    (ring / "bob.json").write_text("{not json")
    result = run(ring, "list", "-o", "json")
    assert result.exit_code == 2 and "bob.json" in result.stderr
    assert [k["name"] for k in json.loads(result.stdout)] == ["alice"]
    assert run(ring, "delete", "bob", "--yes").exit_code == 0  # a corrupt file stays deletable


# --- keystore API ------------------------------------------------------------------------


def _flip_first_hex_digit(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


def _edit(path: Path, **changes: Any) -> None:
    """Rewrite fields of a key file; callables get the old value."""
    doc = json.loads(path.read_text())
    for field, change in changes.items():
        doc[field] = change(doc[field]) if callable(change) else change
    path.write_text(json.dumps(doc))


def test_keystore_round_trip(ring: Path) -> None:
    store = Keystore(ring)
    info = store.generate("alice", PASS)
    key = store.load("alice", PASS)
    assert key.pubkey.hex() == info.pubkey and key.account == info.account
    assert [k.name for k in store.list_keys()] == ["alice"]
    store.delete("alice")
    assert store.list_keys() == []


def test_keystore_errors(ring: Path) -> None:
    store = Keystore(ring)
    store.generate("alice", PASS)
    with pytest.raises(KeyExists, match="already exists"):
        store.generate("alice", PASS)
    with pytest.raises(KeyNotFound, match="no key named 'bob'"):
        store.load("bob", PASS)
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        store.load("alice", "nope")
    with pytest.raises(keystore.InvalidKeyName):
        store.show("../etc/passwd")


def _other_pubkey(_: str) -> str:
    return SigningKey.generate().pubkey.hex()


@pytest.mark.parametrize("changes", [
    {"ciphertext": _flip_first_hex_digit},
    {"created": "1999-01-01T00:00:00Z"},
    {"kind": "meter", "account": None},
    {"cipher": {"name": "chacha20poly1305", "nonce": "00" * 12}},
], ids=["ciphertext", "created", "kind", "nonce"])
def test_tampering_fails_authentication(ring: Path, changes: dict[str, Any]) -> None:
    store = Keystore(ring)
    store.generate("alice", PASS)
    _edit(ring / "alice.json", **changes)
    with pytest.raises(KeystoreCorrupt, match="authentication failed"):
        store.load("alice", PASS)


def test_swapped_pubkey_fails(ring: Path) -> None:
    store = Keystore(ring)
    store.generate("alice", PASS)
    other = SigningKey.generate()
    _edit(ring / "alice.json", pubkey=other.pubkey.hex())
    with pytest.raises(KeystoreCorrupt, match="account id does not match"):
        store.show("alice")
    _edit(ring / "alice.json", account=other.account)  # a consistent forgery still fails
    with pytest.raises(KeystoreCorrupt, match="authentication failed"):
        store.load("alice", PASS)


def test_renamed_file_is_detected(ring: Path) -> None:
    store = Keystore(ring)
    store.generate("alice", PASS)
    (ring / "alice.json").rename(ring / "mallory.json")
    with pytest.raises(KeystoreCorrupt, match="holds key 'alice'"):
        store.show("mallory")


def test_absurd_kdf_parameters_rejected_before_deriving(ring: Path) -> None:
    store = Keystore(ring)
    store.generate("alice", PASS)
    kdf = json.loads((ring / "alice.json").read_text())["kdf"]
    _edit(ring / "alice.json", kdf={**kdf, "memory_cost": 1 << 40})
    with pytest.raises(KeystoreCorrupt, match="memory_cost"):
        store.load("alice", PASS)


def test_production_kdf_parameters(ring: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDLEDGER_KDF_FAST")
    store = Keystore(ring)
    store.generate("alice", PASS)
    kdf = json.loads((ring / "alice.json").read_text())["kdf"]
    assert kdf["name"] == "argon2id"
    assert {k: kdf[k] for k in ("memory_cost", "iterations", "lanes")} == keystore.PRODUCTION_KDF
    assert kdf == {**keystore.PRODUCTION_KDF, "name": "argon2id", "length": 32, "salt": kdf["salt"]}
    assert len(bytes.fromhex(kdf["salt"])) == 16
    assert store.load("alice", PASS).account == store.show("alice").account


def test_load_key_helper_for_other_commands(ring: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.options import load_key

    info = Keystore(ring).generate("alice", PASS)
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", PASS)
    assert load_key("alice", ring, None).account == info.account
