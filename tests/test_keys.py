"""The installation key (DESIGN invariant 9): outside the database, owner-readable, never replaced."""

from __future__ import annotations

import pytest

from batchline import keys


def test_a_generated_key_signs_and_only_its_public_key_verifies(tmp_path) -> None:
    path = tmp_path / "k.pem"
    public = keys.key_generate(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    key = keys.FileKey(path)
    assert key.public_key_pem() == public == keys.public_path_of(path).read_bytes()
    signature = key.sign(b"checkpoint 1")
    assert keys.verify(public, b"checkpoint 1", signature)
    assert not keys.verify(public, b"checkpoint 2", signature)
    other = keys.key_generate(tmp_path / "other.pem")
    assert not keys.verify(other, b"checkpoint 1", signature)
    assert keys.fingerprint(public).startswith("ed25519:") and keys.fingerprint(public) != keys.fingerprint(
        other
    )


def test_a_key_is_never_overwritten_and_a_readable_one_is_refused(tmp_path) -> None:
    path = tmp_path / "k.pem"
    keys.key_generate(path)
    with pytest.raises(keys.KeyProblem, match="never replaced"):
        keys.key_generate(path)
    path.chmod(0o644)
    with pytest.raises(keys.KeyProblem, match="chmod 600"):
        keys.FileKey(path)
    with pytest.raises(keys.KeyProblem, match="batchline keys generate"):
        keys.FileKey(tmp_path / "missing.pem")
