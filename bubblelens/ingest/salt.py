"""The salt of person ids, kept inside the store (the default) or outside it.

A person's id is stored as ``hash_person_id(raw, salt)``. With the salt in the store's ``meta`` table,
whoever copies the store file can hash every email or phone number they can think of and find who is in
it. Kept outside (``--salt-file PATH`` or ``$BUBBLELENS_SALT_FILE``), the store holds only a
fingerprint of the salt (``external:`` + 16 hex of SHA-256), so a copied store cannot be
brute-forced, and a wrong salt file is refused instead of hashing the same person twice.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from ..errors import StoreError
from ..store import Store

__all__ = ["SALT_ENV", "fingerprint", "read_salt_file", "salt_for"]

SALT_ENV = "BUBBLELENS_SALT_FILE"
_MARK = "external:"


def fingerprint(salt: str) -> str:
    """What the store keeps of an outside salt: ``external:`` + 16 hex of SHA-256."""
    return _MARK + hashlib.sha256(("bubblelens-salt\x1f" + salt).encode("utf-8")).hexdigest()[:16]


def read_salt_file(path: str | Path) -> str:
    """The salt in ``path`` (stripped); a missing file is created with a new random salt (mode 0600)."""
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_hex(32) + "\n")
    try:
        salt = p.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise StoreError(f"cannot read the salt file: {e.strerror or e}") from None
    if len(salt) < 16:
        raise StoreError("the salt file holds fewer than 16 characters: not a salt")
    return salt


def salt_for(store: Store, salt_file: str | Path | None = None) -> str:
    """The salt to hash person ids with: the store's own, or the one in ``salt_file`` (else
    ``$BUBBLELENS_SALT_FILE``). A store still on its own salt moves to the outside one only while it
    holds no hashed person id (its own salt is then removed from it)."""
    path = salt_file or os.environ.get(SALT_ENV) or None
    stored = store.get_meta("salt") or ""
    if path is None:
        if stored.startswith(_MARK):
            raise StoreError("this store's salt is kept outside it: give --salt-file PATH or set "
                             f"${SALT_ENV}")
        return store.salt
    salt = read_salt_file(path)
    mark = fingerprint(salt)
    if stored == mark:
        return salt
    if stored.startswith(_MARK):
        raise StoreError("the salt file is not the one this store's person ids were hashed with")
    hashed = store.con.execute(
        "SELECT (SELECT count(*) FROM audiences WHERE audience_type = 'person') + "
        "(SELECT count(*) FROM exposures WHERE audience_id LIKE 'p\\_%' ESCAPE '\\')").fetchall()[0][0]
    if hashed:
        raise StoreError("this store already holds person ids hashed with its own salt; keep using it (no "
                         "--salt-file), or start a new store with the salt file")
    with store.transaction():
        store.set_meta("salt", mark)
    return salt
