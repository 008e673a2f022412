"""Persistence: settings, SQLAlchemy models, sessions, migrations and the job queue."""
