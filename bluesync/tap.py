"""
twistd integration: options and makeService for the C{bluesync} plugin.
"""

from __future__ import annotations

import sys

from twisted.python import usage

from bluesync.config import ConfigError, load_config


def json_log_observer():
    """
    A twistd --logger factory: JSON lines on standard output (for journald
    or a log shipper).  Chosen automatically when [server] log_format = json.
    """
    from twisted.logger import jsonFileLogObserver

    return jsonFileLogObserver(sys.stdout)


class Options(usage.Options):
    synopsis = "[--config FILE]"
    longdesc = (
        "Run the bluesync Exchange ActiveSync server.  With no configuration "
        "it starts an embedded PostgreSQL in ./var and listens on "
        "127.0.0.1:8080.  BLUESYNC_CONFIG may name the file instead of --config."
    )
    optParameters = [
        ["config", "c", None, "path to bluesync.ini"],
    ]

    def postOptions(self) -> None:
        try:
            self.config = load_config(self["config"])
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None
        parent = getattr(self, "parent", None)
        if self.config.server.log_format == "json" and parent is not None and not parent.get("logger"):
            parent["logger"] = json_log_observer


def makeService(options: Options):
    from bluesync.service import makeService as make

    return make(options.config)
