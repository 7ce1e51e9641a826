"""The installation key: an Ed25519 key that lives outside the database (DESIGN invariant 9).

It signs the audit trail's checkpoints and the manifests of batch archives, so
that someone who can write to the database, but has not got the key, cannot
forge either; and whoever holds only the *public* key (an inspector with a
copy of the database or an archive) can check both.

Custody: by default the private key is a PEM file readable by its owner only
(``BATCHLINE_KEY_FILE``, default ``$BATCHLINE_HOME/keys/installation-ed25519.pem``);
the public key sits beside it with ``.pub`` appended. A plant that keeps keys
in an HSM or a KMS names a class with the same two methods in
``BATCHLINE_KEY_BACKEND`` (docs/trust.md). Only the worker and the command line
sign; the web server never needs the private key.

This module imports no Django at module level: the archive verifier, which runs
without Django years later, uses :func:`verify` and :func:`fingerprint`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyProblem(Exception):
    """The installation key is missing, unreadable or unsafe; the message says what to do."""


class InstallationKey(Protocol):
    """What signs: a file key here, an HSM or a KMS elsewhere."""

    def sign(self, data: bytes) -> bytes: ...

    def public_key_pem(self) -> bytes: ...


def fingerprint(public_key_pem: bytes) -> str:
    """``ed25519:`` and the first 32 hex digits of SHA-256 over the raw public key.

    What a plant publishes (in its validation file, on a ticket) so that an
    inspector can tell the key they were given is the installation's.
    """
    key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem("the public key is not an Ed25519 key")
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]


def verify(public_key_pem: bytes, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the holder of ``public_key_pem``'s signature over ``data``."""
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except ValueError:
        return False
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


class FileKey:
    """An Ed25519 private key in a PEM file that only its owner may read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyProblem(
                f"No installation key at {path}: create one with 'batchline keys generate' "
                "(docs/trust.md says where it should live)."
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyProblem(
                f"The installation key {path} can be read by others (mode {stat.filemode(mode)}): "
                f"chmod 600 {path}"
            )
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyProblem(f"{path} does not hold an Ed25519 private key")
        self._key = key

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def key_generate(path: Path) -> bytes:
    """Write a new private key (mode 600) and its public key (``.pub``); the public key's PEM.

    Never overwrites: a checkpoint signed with the old key could no longer be
    told from a forgery once the key that signed it is gone.
    """
    public_path = public_path_of(path)
    if path.exists() or public_path.exists():
        raise KeyProblem(f"{path} already exists: an installation key is never replaced silently")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as f:
        f.write(private_pem)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_path.write_bytes(public_pem)
    return public_pem


def public_path_of(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


# --- the installation's key, as configured (these read Django's settings) -------------------


def key_path() -> Path:
    from django.conf import settings

    return Path(settings.BATCHLINE_KEY_FILE)


def installation_key() -> InstallationKey:
    """The configured signer: the key file, or the class ``BATCHLINE_KEY_BACKEND`` names.

    Outside production a missing key file is generated on first use, so that
    the demo and a developer's machine work at once; in production it must
    have been made (and its custody decided) beforehand.
    """
    from django.conf import settings
    from django.utils.module_loading import import_string

    backend = settings.BATCHLINE_KEY_BACKEND
    if backend:
        return import_string(backend)()
    path = key_path()
    if not path.exists() and not settings.PRODUCTION:
        key_generate(path)
    return FileKey(path)


def installation_public_key() -> bytes:
    """The public key's PEM: from ``BATCHLINE_PUBLIC_KEY_FILE`` if set, else beside the private key.

    Verification reads the public key only, so a copy of the database can be
    checked on a machine that never held the private key.
    """
    from django.conf import settings

    configured = settings.BATCHLINE_PUBLIC_KEY_FILE
    if configured:
        return Path(configured).read_bytes()
    public = public_path_of(key_path())
    if public.exists():
        return public.read_bytes()
    return installation_key().public_key_pem()
