"""`python -m app.admin add-user NAME [--admin]`: add a user of the built-in sign-in from the
server's shell (the first administrator; later ones can be added on the Users page). The
password is read from the terminal, or from standard input with --password-stdin."""

from __future__ import annotations

import argparse
import getpass
import sys

from app.services import ServiceError
from app.services import users as user_service
from db.migrate import upgrade_to_head
from db.session import get_session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.admin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-user", help="add a user with a password")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may manage users and every project")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")
    args = parser.parse_args(argv)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            print("error: the passwords differ; nothing was saved.", file=sys.stderr)
            return 2
    upgrade_to_head()
    try:
        with get_session() as s:  # no acting user: the server's shell is trusted
            user = user_service.create_user(s, args.name, password, is_admin=args.admin)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"added {'administrator' if user.is_admin else 'user'} {user.username}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
