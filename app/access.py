"""Who may use the API and the app when they are reachable from other machines.

Loopback is the default and needs nothing. Serving another address (``--host 0.0.0.0``) without a
secret is refused before any socket opens, unless ``--allow-unauthenticated`` says so out loud:
the API needs ``LINQRAG_API_KEY``, the app ``LINQRAG_APP_PASSWORD``. An exposed app
(``LINQRAG_APP_EXPOSED=1``, set by ``python -m app serve`` for a non-loopback host) also asks for
the password before any page renders, indexes only folders under ``LINQRAG_APP_ROOTS`` (none when
unset: uploads and the demo still work), and sends the server's ``OPENAI_API_KEY`` only to the
server's own ``OPENAI_BASE_URL``, never to a URL a visitor typed.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from pathlib import Path

from linqrag.errors import ConfigError

PASSWORD_ENV = "LINQRAG_APP_PASSWORD"
EXPOSED_ENV = "LINQRAG_APP_EXPOSED"
OPEN_ENV = "LINQRAG_APP_ALLOW_UNAUTHENTICATED"
ROOTS_ENV = "LINQRAG_APP_ROOTS"
SIGNED_IN = "signed_in"
#: Seconds a wrong password waits before the page answers (a guess a second, not thousands).
WRONG_PASSWORD_DELAY = 1.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address; a name other than ``localhost`` counts as exposed
    (it may resolve to anything, and resolving it is a network call)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, secret_env: str, allow_unauthenticated: bool, port: int) -> None:
    """Refuse to serve ``host`` beyond loopback without the secret in ``secret_env`` (raises
    :class:`ConfigError`: one ``error:`` line, exit 2, no socket opened)."""
    if is_loopback(host) or os.environ.get(secret_env) or allow_unauthenticated:
        return
    raise ConfigError(f"refusing to serve {host}:{port} (beyond this machine) without {secret_env}: set it, "
                      f"or pass --allow-unauthenticated to let anyone who reaches {host}:{port} in")


def exposed() -> bool:
    return os.environ.get(EXPOSED_ENV) == "1"


def login_required() -> bool:
    """A password is set, or the app is exposed and not explicitly opened."""
    return bool(os.environ.get(PASSWORD_ENV)) or (exposed() and os.environ.get(OPEN_ENV) != "1")


def password_matches(given: str, password: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), password.encode("utf-8", "replace"))


def require_login() -> None:
    """Stop the page run (``st.stop``) until this browser session has given the password; the
    Streamlit script calls it before anything else renders."""
    import streamlit as st

    if not login_required() or st.session_state.get(SIGNED_IN):
        return
    password = os.environ.get(PASSWORD_ENV, "")
    st.title("linqrag")
    if not password:
        st.error(f"This app is reachable from other machines and no password is set: set {PASSWORD_ENV} "
                 "where it is served, then restart it.")
        st.stop()
    given = st.text_input("Password", type="password", key="login_password")
    if given and password_matches(given, password):
        st.session_state[SIGNED_IN] = True
        st.rerun()
    if given:
        time.sleep(WRONG_PASSWORD_DELAY)
        st.error("Wrong password.")
    st.stop()


def allowed_roots() -> list[Path]:
    return [Path(p).expanduser().resolve() for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]


def folder_refusal(folder: Path) -> str | None:
    """Why the Index page may not index ``folder``, or None. With ``LINQRAG_APP_ROOTS`` set, the
    folder (links resolved) must lie under one of them; an exposed app without it indexes no folder."""
    roots = allowed_roots()
    if not roots:
        if exposed():
            return (f"Folders on the server cannot be indexed from another machine unless {ROOTS_ENV} names "
                    "the folders allowed; upload the files instead.")
        return None
    target = folder.expanduser().resolve()
    if any(target.is_relative_to(root) for root in roots):
        return None
    return f"Only folders under {', '.join(str(r) for r in roots)} may be indexed here ({ROOTS_ENV})."


def same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def key_env_for(base_url: str) -> str | None:
    """The environment variable holding the key to send to ``base_url``: ``OPENAI_API_KEY``, except
    when the app is exposed and ``base_url`` is not the server's ``OPENAI_BASE_URL`` (a visitor's
    URL gets no key)."""
    configured = os.environ.get("OPENAI_BASE_URL", "")
    if exposed() and not (configured and same_url(base_url, configured)):
        return None
    return "OPENAI_API_KEY"
