"""Talking to the Hugging Face Hub, failing at once when it cannot be reached.

Every hub operation of the leaderboard (publishing a dataset, fetching a
submitted model) first calls :func:`ensure_hub_reachable`: it honours
``HF_HUB_OFFLINE``, resolves the endpoint's host name in a thread it does not wait
on for more than the timeout (name resolution has no timeout of its own), and
opens one TCP connection with that timeout. Offline, the caller gets
:class:`HubUnavailable` in seconds instead of a long retry loop.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from typing import Optional, Tuple
from urllib.parse import urlparse

__all__ = ["HubUnavailable", "hub_endpoint", "ensure_hub_reachable", "is_repo_id", "PROBE_TIMEOUT"]

PROBE_TIMEOUT = float(os.environ.get("COLORBENCH_HUB_TIMEOUT", 3.0))
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


class HubUnavailable(RuntimeError):
    """The Hugging Face Hub cannot be reached (offline, blocked, or HF_HUB_OFFLINE set)."""


def is_repo_id(value: str) -> bool:
    """``owner/name`` with the characters the hub allows (no ``..``, no leading dot)."""
    return bool(_REPO_ID.match(value)) and ".." not in value


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _host_port(endpoint: str) -> Tuple[str, int]:
    u = urlparse(endpoint)
    if not u.hostname:
        raise HubUnavailable(f"HF_ENDPOINT={endpoint!r} is not a URL")
    return u.hostname, u.port or (443 if u.scheme == "https" else 80)


def _resolve(host: str, port: int, timeout: float):
    box: dict = {}

    def work() -> None:
        try:
            box["addrs"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            box["error"] = e

    t = threading.Thread(target=work, name="hub-dns-probe", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise HubUnavailable(f"resolving {host} took more than {timeout:g} s")
    if "error" in box:
        raise HubUnavailable(f"cannot resolve {host}: {box['error']}")
    return box["addrs"]


def ensure_hub_reachable(action: str, timeout: Optional[float] = None,
                         alternative: str = "use a local folder instead") -> str:
    """Return the endpoint URL, or raise :class:`HubUnavailable` within about ``timeout`` seconds.

    Args:
        action: what was being attempted, for the message (e.g. "publish to user/board").
        alternative: what to do instead, for the message.
        timeout: seconds for name resolution and for the TCP connection each.
    """
    timeout = PROBE_TIMEOUT if timeout is None else timeout
    endpoint = hub_endpoint()
    hint = ("The Hugging Face Hub is not reachable from this machine, so cannot {action}. "
            "Check the network (or unset HF_HUB_OFFLINE), or {alternative}. ({why})")
    if _offline_env():
        raise HubUnavailable(hint.format(action=action, alternative=alternative, why="HF_HUB_OFFLINE is set"))
    try:
        host, port = _host_port(endpoint)
        addrs = _resolve(host, port, timeout)
        last: Optional[Exception] = None
        for family, kind, proto, _, addr in addrs[:4]:
            try:
                with socket.socket(family, kind, proto) as s:
                    s.settimeout(timeout)
                    s.connect(addr)
                return endpoint
            except OSError as e:
                last = e
        raise HubUnavailable(f"cannot connect to {host}:{port}: {last}")
    except HubUnavailable as e:
        raise HubUnavailable(hint.format(action=action, alternative=alternative, why=f"{endpoint}: {e}")) from None
