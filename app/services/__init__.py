"""Plain service functions behind the Streamlit pages.

Every function takes a SQLAlchemy `Session` as its first argument and never imports
Streamlit, so the logic has ordinary tests and the part-2 pages can reuse it.
Functions that change data commit themselves (labels are saved at once); a failure
rolls back and raises `ServiceError` with a message meant for the user.
"""

from __future__ import annotations


class ServiceError(ValueError):
    """A problem the user can fix; the message says what to do."""
