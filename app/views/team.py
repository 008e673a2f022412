"""Team and sharing: who may work on the current project (owner, annotator, viewer) and,
for administrators, the users of the built-in sign-in."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import auth, ui
from app.services import ServiceError
from app.services import users as user_service
from db.models import OWNER, ROLES

st.title("Team and sharing")
project = ui.require_project()
pid = project.id

with ui.session() as s:
    me = user_service.actor(s)
    is_owner = user_service.can(s, pid, OWNER)
    members = user_service.members(s, pid)
    everyone = user_service.list_users(s) if me is not None and me.is_admin else []

if auth.mode() == "local":
    st.info("Single-user local mode (LIST_AUTH=local): there is no sign-in, so sharing has no "
            "effect until the app runs with LIST_AUTH=password or oidc.", icon=":material/info:")


def attempt(action, done: str) -> None:
    try:
        with ui.session() as s:
            action(s)
    except ServiceError as exc:
        ui.error(exc)
    else:
        st.session_state["team_flash"] = done
        st.rerun()


if "team_flash" in st.session_state:
    st.success(ui.md(st.session_state.pop("team_flash")))

st.subheader("Members of this project")
st.caption("Owners manage the project (import, label set, prompt, training, export, "
           "sharing); annotators label; viewers look. Administrators may do everything.")
if members:
    st.dataframe(pd.DataFrame([{"user": u.username, "name": u.display_name, "role": r,
                                "disabled": u.disabled} for u, r in members]),
                 hide_index=True, width="stretch")
else:
    st.caption("No members yet.")

if is_owner:
    c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
    who = c1.text_input("User name", key="share_user", max_chars=200)
    role = c2.selectbox("Role", ROLES, index=1, key="share_role")
    if c3.button("Share", key="share_do", type="primary"):
        attempt(lambda s: user_service.share(s, pid, who, role), f"{who.strip()} is now {role}.")
    if members:
        c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
        gone = c1.selectbox("Member", [u.id for u, _ in members], key="unshare_user",
                            format_func={u.id: u.username for u, _ in members}.get)
        if c2.button("Remove", key="unshare_do"):
            attempt(lambda s: user_service.unshare(s, pid, gone), "Member removed.")

if everyone:
    st.divider()
    st.subheader("Users (administrators only)")
    st.dataframe(pd.DataFrame([{"user": u.username, "name": u.display_name, "admin": u.is_admin,
                                "disabled": u.disabled, "password": u.password_hash is not None}
                               for u in everyone]), hide_index=True, width="stretch")
    with st.form("add_user", clear_on_submit=True):
        st.markdown("**Add a user**")
        c1, c2 = st.columns(2)
        name = c1.text_input("User name", max_chars=200)
        display = c2.text_input("Display name", max_chars=200)
        password = c1.text_input("Password (at least 8 characters)", type="password")
        admin = c2.checkbox("Administrator")
        if st.form_submit_button("Add user", type="primary"):
            attempt(lambda s: user_service.create_user(s, name, password, display_name=display,
                                                       is_admin=admin),
                    f"User {name.strip()} added.")
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    target = c1.selectbox("User", [u.id for u in everyone], key="admin_user",
                          format_func={u.id: u.username for u in everyone}.get)
    if c2.button("Disable", key="admin_disable"):
        attempt(lambda s: user_service.set_disabled(s, target, True), "User disabled.")
    if c3.button("Enable", key="admin_enable"):
        attempt(lambda s: user_service.set_disabled(s, target, False), "User enabled.")
