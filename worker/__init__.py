"""The background training worker: claims runs from the database and runs list_engine.

`python -m worker` (see worker/main.py). Modules: main (process loop, heartbeat thread,
signals), tasks (what a train / predict / embed run does), data (examples from the
database), reporter (engine callbacks -> batched database writes).
"""
