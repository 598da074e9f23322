"""SNMP credentials: secrets by reference or encrypted, never shown, and tried only where configured."""

from __future__ import annotations

import copy
import pickle
import stat

import pytest
import yaml

from controller.snmp.credentials import (
    CredentialError,
    encrypt_secret,
    ensure_key,
    in_trial_order,
    load_credentials,
    parse_credentials,
)

ENV = {"SNMP_RO": "school-community-1", "PDU_AUTH": "pdu-auth-secret", "KEY": ""}


def store(text: str, tmp_path, environ=ENV):
    return parse_credentials(yaml.safe_load(text), environ, tmp_path)


STORE = """
credentials:
  school-ro: {version: 2c, community: env:SNMP_RO}
  pdu-v3: {version: 3, user: caretaker, auth_protocol: sha256, auth_key: env:PDU_AUTH,
           priv_protocol: aes, priv_key: file:pdu-priv}
targets:
  - {subnet: 10.20.0.0/16, use: [school-ro]}
  - {subnet: 10.20.5.0/24, use: [pdu-v3, school-ro]}
  - {address: 10.20.9.9, use: [pdu-v3]}
"""


@pytest.fixture
def pdu_priv(tmp_path):
    (tmp_path / "pdu-priv").write_text("pdu-priv-secret\n")


def test_secrets_come_from_the_environment_and_files(tmp_path, pdu_priv):
    s = store(STORE, tmp_path)
    assert s.credentials["school-ro"].community.reveal() == "school-community-1"
    assert s.credentials["pdu-v3"].priv_key.reveal() == "pdu-priv-secret"  # trailing newline dropped
    assert s.credentials["pdu-v3"].auth_protocol == "SHA256"


def test_an_address_gets_its_own_rule_else_its_most_specific_subnet_else_nothing(tmp_path, pdu_priv):
    s = store(STORE, tmp_path)
    assert [c.name for c in s.candidates("10.20.9.9")] == ["pdu-v3"]  # exact address beats the /16
    assert [c.name for c in s.candidates("10.20.5.7")] == ["pdu-v3", "school-ro"]  # /24 beats /16
    assert [c.name for c in s.candidates("10.20.1.1")] == ["school-ro"]
    assert s.candidates("192.168.1.1") == ()  # no rule: nothing is sprayed at it
    assert s.candidates("printer.example") == ()


def test_the_credential_that_worked_is_tried_first_but_only_if_still_configured(tmp_path, pdu_priv):
    candidates = store(STORE, tmp_path).candidates("10.20.5.7")
    assert [c.name for c in in_trial_order(candidates, "school-ro")] == ["school-ro", "pdu-v3"]
    assert [c.name for c in in_trial_order(candidates, "retired-cred")] == ["pdu-v3", "school-ro"]


def test_nothing_shows_a_secret(tmp_path, pdu_priv):
    s = store(STORE, tmp_path)
    shown = " ".join([repr(s), str(s), f"{s.credentials['pdu-v3']}", repr(s.credentials["school-ro"].community)])
    for secret in ("school-community-1", "pdu-auth-secret", "pdu-priv-secret"):
        assert secret not in shown
    assert "env:SNMP_RO" in shown and "file:pdu-priv" in shown  # where to look instead
    with pytest.raises(TypeError):
        pickle.dumps(s.credentials["school-ro"])
    assert copy.deepcopy(s.credentials["school-ro"]) == s.credentials["school-ro"]


def test_encrypted_secrets_need_the_key_and_show_no_token(tmp_path):
    key, created = ensure_key(tmp_path / "snmp.key")
    assert created and stat.S_IMODE((tmp_path / "snmp.key").stat().st_mode) == 0o600
    assert ensure_key(tmp_path / "snmp.key") == (key, False)
    token = encrypt_secret(key, "encrypted-community")
    s = store(f"key: file:snmp.key\ncredentials:\n  ro: {{version: 2c, community: '{token}'}}\n", tmp_path)
    assert s.credentials["ro"].community.reveal() == "encrypted-community"
    assert token.removeprefix("fernet:") not in repr(s)
    ensure_key(tmp_path / "other.key")
    with pytest.raises(CredentialError, match="cannot be decrypted"):
        store(f"key: file:other.key\ncredentials:\n  ro: {{version: 2c, community: '{token}'}}\n", tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    ("credentials: {ro: {version: 2c, community: public}}", "never in the file itself"),
    ("credentials: {ro: {version: 2c, community: env:MISSING}}", "MISSING is not set"),
    ("credentials: {ro: {version: 2c, community: file:nowhere}}", "cannot read"),
    ("credentials: {ro: {version: 2c, community: 'fernet:abc'}}", "needs a key"),
    ("key: plainkey\ncredentials: {}", "env:NAME or file:/path"),
    ("credentials: {ro: {version: 1, community: env:SNMP_RO}}", "SNMPv1 is not supported"),
    ("credentials: {u: {version: 3, user: u, auth_protocol: SHA, auth_key: env:PDU_AUTH}}", "authPriv"),
    ("credentials: {u: {version: 3, user: u, auth_protocol: SHA, auth_key: env:KEY, priv_protocol: AES,"
     " priv_key: env:PDU_AUTH}}", "at least 8"),
    ("credentials: {u: {version: 3, user: u, auth_protocol: SHA1, auth_key: env:PDU_AUTH, priv_protocol: AES,"
     " priv_key: env:PDU_AUTH}}", "expected one of"),
    ("credentials: {ro: {version: 2c, community: env:SNMP_RO}}\ntargets: [{subnet: 10.0.0.0/8, use: [rw]}]",
     "no credential named rw"),
    ("credentials: {ro: {version: 2c, community: env:SNMP_RO}}\ntargets: [{subnet: 10.0.0.0/33, use: [ro]}]",
     "not a subnet"),
    ("credentials: {ro: {version: 2c, community: env:SNMP_RO}}\ntargets: [{address: 10.0.0.1, subnet: 10.0.0.0/8,"
     " use: [ro]}]", "exactly one of subnet or address"),
    ("credentials: {ro: {version: 2c, community: env:SNMP_RO, comunity: x}}", "unknown field"),
])
def test_an_unusable_credentials_file_is_refused_with_the_place_named(tmp_path, text, message):
    with pytest.raises(CredentialError, match=message) as refused:
        store(text, tmp_path)
    assert "school-community-1" not in str(refused.value) and "pdu-auth-secret" not in str(refused.value)


def test_a_literal_secret_is_refused_without_repeating_it(tmp_path):
    with pytest.raises(CredentialError) as refused:
        store("credentials: {ro: {version: 2c, community: s3cret-community}}", tmp_path)
    assert "s3cret-community" not in str(refused.value)
    assert "credentials.ro.community" in str(refused.value)


def test_a_missing_or_broken_file_is_one_clear_error(tmp_path):
    with pytest.raises(CredentialError, match="cannot read"):
        load_credentials(tmp_path / "absent.yaml", ENV)
    (tmp_path / "broken.yaml").write_text("credentials: [unclosed")
    with pytest.raises(CredentialError, match="not valid YAML"):
        load_credentials(tmp_path / "broken.yaml", ENV)
