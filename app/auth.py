"""Who is using the app. `gate()` runs in app/main.py before any page: it signs the visitor
in (or shows the sign-in screen and stops) and remembers the user for `ui.session()`, which
makes every database session act for that user (see app/services/users.py).

Modes (LIST_AUTH):
- local (default): no sign-in; everyone who reaches the port is the one "local" admin user.
  Fine on your own machine; the sidebar says so.
- password: users with scrypt-hashed passwords in the database; an admin adds them on the
  Users page (the first admin: `python -m app.admin add-user NAME --admin`). A sign-in
  lasts LIST_SESSION_HOURS and ends with the browser tab (Streamlit session state).
- oidc: Streamlit's built-in `st.login` with the provider configured under [auth] in
  .streamlit/secrets.toml; users are created at their first sign-in, without any project,
  and the e-mails in LIST_ADMINS are administrators.
"""

from __future__ import annotations

import streamlit as st

from app import ui
from app.services import ServiceError
from app.services import users as user_service
from db.settings import get_settings

USER_STATE = ui.USER_STATE  # session-state key read by ui.session()
TOKEN_STATE = "auth_token"


def mode() -> str:
    return get_settings().auth


def gate() -> int | None:
    """The signed-in user's id (remembered for `ui.session()`), or None: then app/main.py
    shows only `sign_in_page`."""
    m = mode()
    uid = _local() if m == "local" else _password_user() if m == "password" else _oidc_user()
    if uid is None:
        st.session_state.pop(USER_STATE, None)
    else:
        st.session_state[USER_STATE] = uid
    return uid


def sign_in_page() -> None:
    """The only page a visitor who is not signed in can see."""
    st.title("Sign in")
    if mode() == "password":
        _password_form()
    else:
        _oidc_screen()


def _signed_in_sidebar(name: str, sign_out) -> None:
    with st.sidebar:
        c1, c2 = st.columns([3, 2], vertical_alignment="center")
        c1.caption(ui.md(f"Signed in as {name}"))
        if c2.button("Sign out", key="auth_sign_out"):
            sign_out()
            st.rerun()


def _local() -> int:
    with ui.session() as s:
        user = user_service.local_user(s)
    st.sidebar.caption("Single-user local mode: no sign-in, and anyone who can reach this "
                       "port can do everything. Set LIST_AUTH=password or oidc to share it.")
    return user.id


# ---------------------------------------------------------------- built-in passwords


def _sign_out_password() -> None:
    with ui.session() as s:
        user_service.end_session(s, st.session_state.pop(TOKEN_STATE, None))
    st.session_state.pop(USER_STATE, None)


def _password_user() -> int | None:
    with ui.session() as s:
        user = user_service.user_for_token(s, st.session_state.get(TOKEN_STATE))
    if user is None:
        return None
    _signed_in_sidebar(user_service.display(user), _sign_out_password)
    return user.id


def _password_form() -> None:
    if st.session_state.pop(TOKEN_STATE, None):
        st.info("Your session has expired (or you were signed out): sign in again.")
    with ui.session() as s:
        if not user_service.list_users(s):
            st.warning("There are no users yet. An administrator creates the first one on the "
                       "server: `python -m app.admin add-user NAME --admin`.")
    with st.form("sign_in", enter_to_submit=True, clear_on_submit=True):  # no password kept
        username = st.text_input("User name", key="auth_username", max_chars=200)
        password = st.text_input("Password", type="password", key="auth_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            with ui.session() as s:
                user = user_service.authenticate(s, username, password)
                st.session_state[TOKEN_STATE] = user_service.start_session(
                    s, user, get_settings().session_hours)
        except ServiceError as exc:
            ui.error(exc)
        else:
            st.rerun()


# ---------------------------------------------------------------- OIDC (st.login)


def _oidc_providers() -> list[str] | None:
    """Named providers under [auth] (an empty list: the single unnamed one); None when
    secrets.toml has no [auth] section."""
    try:
        auth = st.secrets.get("auth")
    except (FileNotFoundError, KeyError, ValueError):
        auth = None
    if not auth:
        return None
    return sorted(k for k, v in auth.items() if hasattr(v, "items"))


def _logged_in() -> bool:
    return bool(getattr(st.user, "is_logged_in", False))  # absent outside a real server


def _oidc_user() -> int | None:
    if _oidc_providers() is None or not _logged_in() or not st.user.get("email"):
        return None
    try:
        with ui.session() as s:
            user = user_service.oidc_user(s, st.user.get("email"), st.user.get("name") or "",
                                          get_settings().admins)
    except ServiceError:
        return None  # disabled: the sign-in page says so
    _signed_in_sidebar(user_service.display(user), st.logout)
    return user.id


def _oidc_screen() -> None:
    providers = _oidc_providers()
    if providers is None:
        ui.error("LIST_AUTH=oidc needs an [auth] section (redirect_uri, cookie_secret and the "
                 "provider's client_id, client_secret, server_metadata_url) in "
                 ".streamlit/secrets.toml; see the README.")
        return
    if not _logged_in():
        for name in providers or [None]:
            label = f"Sign in with {name}" if name else "Sign in"
            st.button(label, key=f"auth_login_{name or 'default'}", type="primary",
                      on_click=st.login, args=(name,) if name else ())
        return
    if not st.user.get("email"):
        ui.error("The sign-in provider did not give an e-mail address; ask for the `email` "
                 "scope in the provider's settings.")
    else:
        ui.error("This account is disabled: ask an administrator.")
    st.button("Sign out", key="auth_sign_out_bad", on_click=st.logout)
