"""The background training worker: claims runs from the database and runs list_engine."""
