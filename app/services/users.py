"""Users, sign-in sessions and project roles.

Who is acting travels with the database session: the app puts the signed-in user's id in
`session.info["user_id"]` (see `act_as`), and the services read it with `actor_id()` to
record who did what and to check roles with `require()`. A session without a user is a
trusted caller (the command line, the worker, tests, scripts): it may do everything and
records no one. The app always sets a user, also in single-user local mode (the "local" user).

Passwords are stored as scrypt hashes (hashlib, salted, constant-time comparison); sign-in
sessions as SHA-256 hashes of random tokens, with an expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import ServiceError
from db.models import ANNOTATOR, OWNER, ROLES, VIEWER, Project, ProjectMember, User, UserSession
from db.models import utcnow as _now
from db.writes import user_write

USER_KEY = "user_id"  # session.info key: who is acting
LOCAL_USERNAME = "local"
MIN_PASSWORD = 8
MAX_USERNAME = 200
_RANK = {VIEWER: 1, ANNOTATOR: 2, OWNER: 3}
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# What each role may do, for messages.
_NEEDS = {VIEWER: "viewing it", ANNOTATOR: "labelling", OWNER: "managing it"}


class PermissionDenied(ServiceError):
    """The signed-in user's role does not allow this; the message says what is needed."""


# ---------------------------------------------------------------- who is acting


def act_as(session: Session, user_id: int | None) -> Session:
    """Make `session` act for `user_id` (None: a trusted caller); returns the session."""
    if user_id is None:
        session.info.pop(USER_KEY, None)
    else:
        session.info[USER_KEY] = int(user_id)
    return session


def actor_id(session: Session) -> int | None:
    return session.info.get(USER_KEY)


def actor(session: Session) -> User | None:
    uid = actor_id(session)
    return session.get(User, uid) if uid is not None else None


# ---------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(digest) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


_DUMMY_HASH = hash_password("not a real password")  # same work when the user is unknown


def _clean_username(username: str) -> str:
    username = (username or "").strip()
    if not username:
        raise ServiceError("A user needs a name.")
    if len(username) > MAX_USERNAME:
        raise ServiceError(f"A user name can have at most {MAX_USERNAME} characters.")
    if any(ch.isspace() or not ch.isprintable() for ch in username):
        raise ServiceError("A user name cannot contain spaces or control characters.")
    return username


def _check_password_rules(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise ServiceError(f"A password needs at least {MIN_PASSWORD} characters.")


# ---------------------------------------------------------------- users


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(
        select(User).where(func.lower(User.username) == (username or "").strip().lower()))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def _require_admin(session: Session) -> None:
    who = actor(session)
    if actor_id(session) is not None and (who is None or not who.is_admin):
        raise PermissionDenied("Only an administrator can manage users.")


@user_write
def create_user(session: Session, username: str, password: str | None, *,
                display_name: str = "", is_admin: bool = False) -> User:
    """Add a user (admins only). `password` None: the user signs in through OIDC only."""
    _require_admin(session)
    username = _clean_username(username)
    if find_user(session, username) is not None:
        raise ServiceError(f"There is already a user called {username!r}.")
    if password is not None:
        _check_password_rules(password)
    user = User(username=username, display_name=(display_name or "").strip()[:200],
                password_hash=hash_password(password) if password is not None else None,
                is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


@user_write
def set_disabled(session: Session, user_id: int, disabled: bool = True) -> None:
    """Disable (or enable again) a user; their sign-in sessions end. Users are never deleted,
    so their name stays on the labels and runs they made."""
    _require_admin(session)
    if disabled and actor_id(session) == user_id:
        raise ServiceError("You cannot disable yourself.")
    user = session.get(User, user_id)
    if user is None:
        raise ServiceError("That user does not exist.")
    user.disabled = disabled
    if disabled:
        session.execute(UserSession.__table__.delete().where(UserSession.user_id == user_id))


@user_write
def local_user(session: Session) -> User:
    """The one user of single-user local mode (an admin without a password)."""
    return find_user(session, LOCAL_USERNAME) or _create_user_once(
        session, User(username=LOCAL_USERNAME, display_name="Local user", is_admin=True))


def _create_user_once(session: Session, user: User) -> User:
    """Insert `user`; if another process created one of that name at the same moment (two
    app processes starting on a new PostgreSQL database, two first sign-ins at once), the
    unique username refuses ours and theirs is returned."""
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        return find_user(session, user.username)
    return user


@user_write
def oidc_user(session: Session, email: str, name: str = "", admins: tuple[str, ...] = ()) -> User:
    """The user behind an OIDC identity (by e-mail), created at first sign-in without any
    project; `admins` (LIST_ADMINS) are made administrators."""
    email = _clean_username(email)
    user = find_user(session, email) or _create_user_once(
        session, User(username=email, display_name=(name or "").strip()[:200]))
    if email.lower() in {a.lower() for a in admins}:
        user.is_admin = True
    session.flush()
    if user.disabled:
        raise PermissionDenied("This account is disabled: ask an administrator.")
    return user


def display(user: User | None) -> str:
    if user is None:
        return "—"
    return user.display_name or user.username


# ---------------------------------------------------------------- sign-in sessions


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(session: Session, username: str, password: str) -> User:
    """The user with this name and password, or PermissionDenied (the same message for an
    unknown name and a wrong password)."""
    user = find_user(session, username)
    ok = check_password(password or "", user.password_hash if user else _DUMMY_HASH)
    if user is None or not ok or user.password_hash is None:
        raise PermissionDenied("Wrong user name or password.")
    if user.disabled:
        raise PermissionDenied("This account is disabled: ask an administrator.")
    return user


@user_write
def start_session(session: Session, user: User, hours: float) -> str:
    """A new sign-in session for `user` that expires after `hours`; returns its token."""
    # Expired sessions are of no use to anyone: clear them while we are here.
    session.execute(UserSession.__table__.delete().where(UserSession.expires_at < _now()))
    session.expire_all()
    token = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, token_hash=_token_hash(token),
                            expires_at=_now() + timedelta(hours=hours)))
    return token


def user_for_token(session: Session, token: str | None) -> User | None:
    """The user of a live sign-in session, or None (unknown, expired, or user disabled)."""
    if not token:
        return None
    row = session.scalar(select(UserSession).where(UserSession.token_hash == _token_hash(token)))
    if row is None or row.expires_at <= _now():
        return None
    user = session.get(User, row.user_id)
    return None if user is None or user.disabled else user


@user_write
def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(UserSession.__table__.delete()
                        .where(UserSession.token_hash == _token_hash(token)))


# ---------------------------------------------------------------- project roles


def role_of(session: Session, project_id: int, user_id: int | None) -> str | None:
    """The user's role in the project (administrators are owners everywhere)."""
    if user_id is None:
        return OWNER
    user = session.get(User, user_id)
    if user is None or user.disabled:
        return None
    if user.is_admin:
        return OWNER
    return session.scalar(select(ProjectMember.role).where(
        ProjectMember.project_id == project_id, ProjectMember.user_id == user_id))


def can(session: Session, project_id: int, role: str) -> bool:
    have = role_of(session, project_id, actor_id(session))
    return have is not None and _RANK[have] >= _RANK[role]


def require(session: Session, project_id: int, role: str) -> None:
    """Raise PermissionDenied unless the acting user has at least `role` in the project."""
    if can(session, project_id, role):
        return
    have = role_of(session, project_id, actor_id(session))
    if have is None:
        raise PermissionDenied("You have no access to this project: ask its owner to share it.")
    raise PermissionDenied(f"You are a {have} of this project; {_NEEDS[role]} needs the {role} "
                           "role: ask its owner.")


def visible_project_ids(session: Session) -> set[int] | None:
    """Ids of the projects the acting user may see; None means all of them."""
    uid, who = actor_id(session), actor(session)
    if uid is None or (who is not None and who.is_admin):  # trusted caller or admin
        return None
    return set(session.scalars(select(ProjectMember.project_id).where(ProjectMember.user_id == uid)))


def add_owner(session: Session, project_id: int) -> None:
    """Make the acting user the owner of a project they just created (inside their write)."""
    uid = actor_id(session)
    if uid is not None:
        session.add(ProjectMember(project_id=project_id, user_id=uid, role=OWNER))


def members(session: Session, project_id: int) -> list[tuple[User, str]]:
    return list(session.execute(
        select(User, ProjectMember.role).join(ProjectMember, ProjectMember.user_id == User.id)
        .where(ProjectMember.project_id == project_id).order_by(User.username)).tuples())


@user_write
def share(session: Session, project_id: int, username: str, role: str) -> ProjectMember:
    """Give a named user a role in the project (owners only); changes an existing role."""
    require(session, project_id, OWNER)
    if role not in ROLES:
        raise ServiceError(f"Unknown role {role!r}: pick one of {', '.join(ROLES)}.")
    if session.get(Project, project_id) is None:
        raise ServiceError("That project no longer exists.")
    user = find_user(session, username)
    if user is None:
        raise ServiceError(f"There is no user called {username.strip()!r}: an administrator "
                           "adds users first.")
    member = session.scalar(select(ProjectMember).where(
        ProjectMember.project_id == project_id, ProjectMember.user_id == user.id))
    if member is None:
        member = ProjectMember(project_id=project_id, user_id=user.id, role=role)
        session.add(member)
    else:
        if member.role == OWNER and role != OWNER:
            _keep_an_owner(session, project_id, user.id)
        member.role = role
    session.flush()
    return member


@user_write
def unshare(session: Session, project_id: int, user_id: int) -> None:
    require(session, project_id, OWNER)
    member = session.scalar(select(ProjectMember).where(
        ProjectMember.project_id == project_id, ProjectMember.user_id == user_id))
    if member is None:
        return
    if member.role == OWNER:
        _keep_an_owner(session, project_id, user_id)
    session.delete(member)


def _keep_an_owner(session: Session, project_id: int, leaving_user_id: int) -> None:
    others = session.scalar(select(func.count()).select_from(ProjectMember).where(
        ProjectMember.project_id == project_id, ProjectMember.role == OWNER,
        ProjectMember.user_id != leaving_user_id))
    if not others:
        raise ServiceError("A project needs at least one owner: make someone else owner first.")


def names(session: Session, user_ids) -> dict[int, str]:
    """user id -> display name, for tables."""
    ids = {u for u in user_ids if u is not None}
    if not ids:
        return {}
    return {u.id: display(u) for u in session.scalars(select(User).where(User.id.in_(ids)))}
