"""Projects: create, rename, delete, list, and an overview of what each one holds."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.services import ServiceError, users
from db.models import OWNER, VIEWER, Document, Label, LabelClass, Project, PromptConfig
from db.writes import user_write

MAX_NAME = 200


@dataclass(frozen=True)
class ProjectSummary:
    id: int
    name: str
    description: str
    documents: int
    label_classes: int
    labels: int
    prompt_versions: int


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ServiceError("A project needs a name.")
    if len(name) > MAX_NAME:
        raise ServiceError(f"The name is too long ({len(name)} characters, at most {MAX_NAME}).")
    return name


def _check_unique(session: Session, name: str, exclude_id: int | None = None) -> None:
    stmt = select(Project.id).where(func.lower(Project.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(Project.id != exclude_id)
    if session.scalar(stmt) is not None:
        raise ServiceError(f"A project called {name!r} already exists: pick another name.")


def list_projects(session: Session) -> list[Project]:
    """The projects the acting user may see (all of them for admins and trusted callers)."""
    stmt = select(Project).order_by(Project.name)
    visible = users.visible_project_ids(session)
    if visible is not None:
        stmt = stmt.where(Project.id.in_(visible))
    return list(session.scalars(stmt))


def get_project(session: Session, project_id: int | None) -> Project | None:
    """The project, or None when it does not exist or the acting user may not see it."""
    if project_id is None or not users.can(session, project_id, VIEWER):
        return None
    return session.get(Project, project_id)


@user_write
def create_project(session: Session, name: str, description: str = "") -> Project:
    name = _clean_name(name)
    _check_unique(session, name)
    project = Project(name=name, description=(description or "").strip())
    session.add(project)
    session.flush()
    users.add_owner(session, project.id)
    return project


def unique_name(session: Session, base: str) -> str:
    """`base`, or `base 2`, `base 3`... whichever is free."""
    names = {n.lower() for n in session.scalars(select(Project.name))}
    if base.lower() not in names:
        return base
    i = 2
    while f"{base} {i}".lower() in names:
        i += 1
    return f"{base} {i}"


@user_write
def rename_project(session: Session, project_id: int, new_name: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise ServiceError("That project no longer exists.")
    users.require(session, project_id, OWNER)
    new_name = _clean_name(new_name)
    _check_unique(session, new_name, exclude_id=project_id)
    project.name = new_name
    return project


@user_write
def delete_project(session: Session, project_id: int) -> None:
    """Delete a project and everything in it (documents, labels, prompts, runs)."""
    users.require(session, project_id, OWNER)
    # A core DELETE lets the database cascade (fast for 100k documents).
    session.execute(delete(Project).where(Project.id == project_id))
    session.expunge_all()


def summarize(session: Session, project_id: int) -> ProjectSummary:
    project = session.get(Project, project_id)
    if project is None:
        raise ServiceError("That project no longer exists.")

    def count(model) -> int:
        return session.scalar(
            select(func.count()).select_from(model).where(model.project_id == project_id)
        ) or 0

    return ProjectSummary(
        id=project.id,
        name=project.name,
        description=project.description,
        documents=count(Document),
        label_classes=count(LabelClass),
        labels=count(Label),
        prompt_versions=count(PromptConfig),
    )
