"""
The new password of an account or an administrator, as every
bluesync-admin command that sets one reads it: prompted twice on a
terminal, or one line of standard input for scripts (--password-stdin),
so that a password never has to appear on a command line, where other
users and the shell history would see it.
"""

from __future__ import annotations

import getpass
import sys

from twisted.internet import threads

from bluesync.passwords import hash_password

MIN_PASSWORD_LENGTH = 8


def add_password_option(parser) -> None:
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def read_password(from_stdin: bool) -> str | None:
    """
    The new password, or None (the reason printed) when the two prompts
    differ or it is too short.
    """
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("bluesync-admin: passwords differ", file=sys.stderr)
            return None
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"bluesync-admin: the password needs at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return None
    return password


async def new_password_hash(args) -> str | None:
    """
    The hash to store for the password the command was given (see
    L{add_password_option}), or None when it was refused.  Hashing is
    deliberately slow (Argon2id), so it runs in a thread.
    """
    password = read_password(args.password_stdin)
    if password is None:
        return None
    return await threads.deferToThread(hash_password, password)
