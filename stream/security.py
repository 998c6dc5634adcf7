"""ZeroMQ CURVE: key pairs, a server (publisher) that only talks to allow-listed clients, client settings.

Keys are the files pyzmq's ``zmq.auth.create_certificates`` writes: NAME.key (public) and NAME.key_secret
(public + secret). See docs/SECURITY.md.
"""
from __future__ import annotations

import logging
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from engines.errors import ConfigError

log = logging.getLogger(__name__)


def generate_keypair(folder: str | Path, name: str) -> tuple[Path, Path]:
    folder = Path(folder)
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"key name: expected letters, digits, '-' or '_', got {name!r}")
    existing = [p for p in (folder / f"{name}.key", folder / f"{name}.key_secret") if p.exists() or p.is_symlink()]
    if existing:
        raise ConfigError(f"keys: {existing[0]} exists; a deployed key pair is never replaced (its secret key would be "
                          f"lost and every client that trusts it locked out): choose another --name or --out, or move "
                          f"the old pair away yourself (nothing was written)")
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(folder), name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)


def _load(key: str, path: str, secret: bool) -> tuple[bytes, bytes | None]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{key}: key file {path!r} not found (make one with: polypwatch keys --out DIR --name NAME)")
    try:
        public, sec = zmq.auth.load_certificate(str(p))
    except (ValueError, OSError) as e:
        raise ConfigError(f"{key}: {path!r} is not a ZeroMQ certificate ({e})") from None
    if secret and sec is None:
        raise ConfigError(f"{key}: {path!r} holds no secret key; expected the NAME.key_secret file")
    return public, sec


class CurveServer:
    """Makes a bound socket a CURVE server and runs the ZAP authenticator with the client allow-list."""

    def __init__(self, ctx: zmq.Context, secret_key_file: str, allowed_clients_dir: str):
        if not allowed_clients_dir:
            raise ConfigError("publisher.curve_allowed_clients: expected a folder of allowed clients' public .key "
                              "files when publisher.curve_secret_key is set, got ''")
        folder = Path(allowed_clients_dir)
        if not folder.is_dir() or not list(folder.glob("*.key")):
            raise ConfigError(f"publisher.curve_allowed_clients: {allowed_clients_dir!r} holds no .key files")
        self.public, self.secret = _load("publisher.curve_secret_key", secret_key_file, secret=True)
        self.auth = ThreadAuthenticator(ctx)
        self.auth.start()
        self.auth.configure_curve(domain="*", location=str(folder))

    def apply(self, sock: zmq.Socket) -> None:
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def stop(self) -> None:
        self.auth.stop()


def apply_client(sock: zmq.Socket, secret_key_file: str, server_key_file: str, section: str) -> None:
    public, secret = _load(f"{section}.curve_secret_key", secret_key_file, secret=True)
    server_public, _ = _load(f"{section}.curve_server_key", server_key_file, secret=False)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public
