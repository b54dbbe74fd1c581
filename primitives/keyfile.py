"""Key files: JSON with the base64 seed, written atomically with mode 0600, never overwritten.

Loading a key that group or others can read warns loudly: the operator must fix the mode.
"""

from __future__ import annotations

import base64
import json
import logging
import stat
from pathlib import Path

from primitives.crypto import KEY_TYPE, KeyFileError, PrivateKey, format_address
from primitives.durable import replace_file

log = logging.getLogger(__name__)

def save_key(key: PrivateKey, path: Path, name: str = "") -> None:
    """Write a key file readable by the owner only (mode 0600), atomically.

    Refuses to overwrite an existing file: losing a validator key is not recoverable.
    """
    path = Path(path)
    if path.exists():
        raise KeyFileError(f"refusing to overwrite existing key file {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "name": name,
        "type": KEY_TYPE,
        "address": format_address(key.address),
        "pub_key": base64.b64encode(key.public_key).decode(),
        "priv_key": base64.b64encode(key.seed).decode(),
    }
    replace_file(path, (json.dumps(document, indent=2) + "\n").encode(), mode=0o600)


def load_key(path: Path) -> PrivateKey:
    """Read a key file; warn loudly when group or others can read it."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        document = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "PRIVATE KEY FILE %s IS ACCESSIBLE BY OTHER USERS (mode %o); run: chmod 600 %s",
            path, stat.S_IMODE(mode), path,
        )
    if not isinstance(document, dict) or document.get("type") != KEY_TYPE:
        raise KeyFileError(f"key file {path}: type must be {KEY_TYPE!r}")
    try:
        seed = base64.b64decode(document["priv_key"], validate=True)
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyFileError(f"key file {path}: priv_key is missing or not base64") from exc
    key = PrivateKey(seed)
    stated = document.get("pub_key")
    if stated is not None and stated != base64.b64encode(key.public_key).decode():
        raise KeyFileError(f"key file {path}: pub_key does not match priv_key")
    return key
