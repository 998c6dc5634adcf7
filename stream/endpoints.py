"""ZeroMQ endpoint checks: loopback unless configured otherwise."""
from __future__ import annotations

import ipaddress
import re

from engines.errors import ConfigError

_TCP = re.compile(r"tcp://(\[[^\]]+\]|[^:/]+):(\d+|\*)$")


def is_loopback_host(host: str) -> bool:
    """'localhost' or a loopback IP address (IPv6 with or without brackets)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_endpoint(endpoint: str) -> bool:
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    m = _TCP.match(endpoint)
    return bool(m) and is_loopback_host(m.group(1))


def check_endpoint(key: str, endpoint: str, allow_non_loopback: bool) -> None:
    """Raise ConfigError unless ``endpoint`` is tcp://HOST:PORT, ipc://PATH or inproc://NAME, on loopback
    unless ``allow_non_loopback``."""
    if not (endpoint.startswith(("ipc://", "inproc://")) or _TCP.match(endpoint)):
        raise ConfigError(f"{key}: expected tcp://HOST:PORT, ipc://PATH or inproc://NAME, got {endpoint!r}")
    if endpoint.startswith("tcp://"):
        port = _TCP.match(endpoint).group(2)
        if port != "*" and not (1 <= int(port) <= 65535):
            raise ConfigError(f"{key}: expected a port in 1..65535, got {port}")
    if not allow_non_loopback and not is_loopback_endpoint(endpoint):
        raise ConfigError(f"{key}: {endpoint!r} is not a loopback address; set allow_non_loopback: true in the "
                          f"same section to expose detections on the network (see docs/SECURITY.md)")


def parse_listen(key: str, text: str) -> tuple[str, int]:
    """'HOST:PORT' (IPv6 as '[::1]:8080') -> (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ConfigError(f"{key}: expected HOST:PORT such as 127.0.0.1:8080, got {text!r}")
    return host, int(port)
