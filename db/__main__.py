"""`python -m db upgrade | current | heads | revision -m MESSAGE` (schema migrations);
`python -m db export-labels --project P --out DIR` (a project's labels as files)."""

from __future__ import annotations

import argparse
import logging
import sys

from alembic import command

from db.migrate import alembic_config, current_revision, head_revision, upgrade_to_head
from db.session import make_engine
from db.settings import get_settings, safe_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("upgrade", help="bring the database to the newest schema (idempotent)")
    sub.add_parser("current", help="print the database's schema revision")
    sub.add_parser("heads", help="print the newest revision of the migration scripts")
    rev = sub.add_parser("revision", help="autogenerate a migration from the models")
    rev.add_argument("-m", "--message", required=True)
    exp = sub.add_parser("export-labels", help="write a project's labels (full text, label, "
                         "source, held-out/gold flags, timestamps, trained runs) into a folder")
    exp.add_argument("--project", required=True, help="project id or exact name")
    exp.add_argument("--out", required=True, help="folder for labels.csv, labels.jsonl, "
                     "labels.parquet and labels_dataset/ (datasets.load_from_disk)")
    exp.add_argument("--format", dest="formats", nargs="+", default=None,
                     help="any of csv jsonl parquet datasets (default: all four)")
    exp.add_argument("--database-url", default=None,
                     help="SQLAlchemy URL, e.g. sqlite:///data/list.db (default: the settings')")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)

    url = getattr(args, "database_url", None) or get_settings().database_url
    if args.command == "export-labels":
        # imported here: pandas and pyarrow would slow down every `python -m db upgrade`
        from db.label_export import FORMATS, LabelExportError, export_from_url

        try:
            print(export_from_url(url, args.project, args.out, tuple(args.formats or FORMATS)))
        except LabelExportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.command == "upgrade":
        print(f"[db] schema at {upgrade_to_head(url)} ({safe_url(url)})", file=sys.stderr)
    elif args.command == "current":
        engine = make_engine(url)
        print(current_revision(engine))
        engine.dispose()
    elif args.command == "heads":
        print(head_revision())
    elif args.command == "revision":
        command.revision(alembic_config(url), message=args.message, autogenerate=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
