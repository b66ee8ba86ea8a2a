"""python -m scoring_api --config config.ini [--port N] [--log FILE]"""
import argparse
import logging
import sys

from scoring_api import config, logs, metrics, server

logger = logging.getLogger("scoring_api")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m scoring_api", description="Serve the Scoring API.")
    parser.add_argument("--config", metavar="FILE",
                        help="config.ini to read (default: built-in values)")
    parser.add_argument("--port", metavar="N",
                        help="port to listen on, over [server] port")
    parser.add_argument("--log", metavar="FILE",
                        help="log file, over [server] log_file")
    return parser.parse_args(argv)


def load(args):
    """Settings from the file, the environment, then the command line."""
    overrides = []
    if args.port is not None:
        overrides.append(("--port", "server", "port", args.port))
    if args.log is not None:
        overrides.append(("--log", "server", "log_file", args.log))
    return config.load_settings(args.config, overrides=overrides)


def main(argv=None):
    args = parse_args(argv)
    try:
        settings = load(args)
    except config.ConfigError as error:
        print("scoring_api: %s" % error, file=sys.stderr)
        return 2
    try:
        logs.setup_logging(settings.log_level, settings.server.log_file,
                           settings.server.log_format)
    except OSError as error:
        print("scoring_api: [server] log_file = %r: cannot open: %s" % (
            settings.server.log_file, error.strerror or error),
            file=sys.stderr)
        return 2
    try:
        return server.run(settings)
    except metrics.MetricsDirectoryError as error:
        _say(settings, str(error))
        return 2
    except OSError as error:
        _say(settings, "cannot listen on %s:%d: %s" % (
            settings.server.host, settings.server.port,
            error.strerror or error))
        return 1


def _say(settings, message):
    """Why start-up stopped: in the log, and on standard error when the
    log is a file (the operator watches the terminal)."""
    logger.error("%s", message)
    if settings.server.log_file:
        print("scoring_api: %s" % message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
