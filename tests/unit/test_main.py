"""Start-up failures of `python -m scoring_api`: one line on standard error
naming the key and the value, exit code 2 (1 for a taken port), never a
traceback."""
import contextlib
import io
import os
import socket
import tempfile
import unittest
from unittest import mock

from scoring_api import __main__ as main_module
from scoring_api import metrics
from tests.support.cases import cases


def write_file(data):
    handle = tempfile.NamedTemporaryFile(suffix=".ini", delete=False)
    with handle:
        handle.write(data)
    return handle.name


class StartUpErrorTest(unittest.TestCase):
    def run_main(self, argv, environ=None, real_logging=False):
        """(exit code, standard error) of main(argv) under `environ`; the
        logging set-up is skipped unless `real_logging` (it would replace
        the test runner's handlers)."""
        stderr = io.StringIO()
        environ = {key: value for key, value in os.environ.items()
                   if not key.startswith("SCORING_")} | (environ or {})
        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch.dict(os.environ, environ,
                                                clear=True))
            if not real_logging:
                stack.enter_context(
                    mock.patch.object(main_module.logs, "setup_logging"))
            stack.enter_context(contextlib.redirect_stderr(stderr))
            code = main_module.main(argv)
        return code, stderr.getvalue()

    @cases([
        ({"SCORING_STORE_URL": "redis://h:6379/0?socket_timeout=abc"},
         "scoring_api: SCORING_STORE_URL: [store] url ="
         " 'redis://h:6379/0?socket_timeout=abc': unknown URL option"
         " 'socket_timeout' (timeouts, retries and the pool size are config"
         " keys; ssl_* options need rediss://)\n"),
        ({"SCORING_STOER_URL": "redis://h:6379/0"},
         "scoring_api: SCORING_STOER_URL: unknown section [stoer] (known:"
         " server, auth, store, cache, limits, overload)\n"),
        ({"SCORING_STORE_URL": "redis://:hunter2@h:port/0"},
         "scoring_api: SCORING_STORE_URL: [store] url ="
         " 'redis://:***@h:port/0': expected a port 1..65535, not 'port'\n"),
        ({"SCORING_SERVER_PORT": "\u0668\u0660"},
         "scoring_api: SCORING_SERVER_PORT: [server] port ="
         " '\u0668\u0660': expected an integer\n"),
        ({"SCORING_SERVER_PORT": "47_399"},
         "scoring_api: SCORING_SERVER_PORT: [server] port = '47_399':"
         " expected an integer\n"),
    ])
    def test_a_bad_environment_is_one_line(self, case):
        environ, line = case
        self.assertEqual(self.run_main([], environ), (2, line))

    @cases([
        (b"[server]\nhost = caf\xe9\n", "line 2 is not UTF-8 text"),
        (b"[DEFAULT]\nport = 80\n",
         "unknown section [DEFAULT] (known: server, auth, store, cache,"
         " limits, overload, limits.accounts)"),
    ])
    def test_a_bad_file_is_one_line(self, case):
        data, message = case
        path = write_file(data)
        self.addCleanup(os.unlink, path)
        self.assertEqual(self.run_main(["--config", path]),
                         (2, "scoring_api: %s: %s\n" % (path, message)))

    def test_a_log_file_that_cannot_be_opened_names_the_key(self):
        code, stderr = self.run_main(
            [], {"SCORING_SERVER_LOG_FILE": "/nonexistent/dir/x.log"},
            real_logging=True)
        self.assertEqual((code, stderr), (
            2, "scoring_api: [server] log_file = '/nonexistent/dir/x.log':"
            " cannot open: No such file or directory\n"))

    def test_a_taken_port_is_said_on_standard_error_with_a_log_file(self):
        log = write_file(b"")
        self.addCleanup(os.unlink, log)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            code, stderr = self.run_main(["--port", str(port), "--log", log])
        self.assertEqual((code, stderr), (
            1, "scoring_api: cannot listen on 127.0.0.1:%d: Address already"
            " in use\n" % port))

    def test_a_taken_port_is_logged_once_without_a_log_file(self):
        # The log is standard error then: the line is not printed twice.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with self.assertLogs("scoring_api", "ERROR") as logs:
                code, stderr = self.run_main(["--port", str(port)])
        self.assertEqual((code, stderr), (1, ""))
        self.assertEqual(
            [record.getMessage() for record in logs.records],
            ["cannot listen on 127.0.0.1:%d: Address already in use" % port])

    @cases([{}, {"SCORING_SERVER_WORKERS": "2"}])
    def test_a_metrics_directory_that_cannot_be_used_is_one_line(self,
                                                                 environ):
        log = write_file(b"")
        self.addCleanup(os.unlink, log)
        missing = os.path.join(tempfile.mkdtemp(), "missing")
        self.addCleanup(os.rmdir, os.path.dirname(missing))
        with mock.patch.object(main_module.server, "listen") as listen, \
                mock.patch.object(main_module.server, "_supervise") as fork, \
                mock.patch.object(metrics, "_metrics", None):  # a new process
            code, stderr = self.run_main(
                ["--log", log], dict(environ,
                                     PROMETHEUS_MULTIPROC_DIR=missing))
        self.assertEqual((code, stderr), (
            2, "scoring_api: PROMETHEUS_MULTIPROC_DIR = %r: cannot make the"
            " metrics directory there: No such file or directory\n"
            % missing))
        listen.assert_not_called()  # before anything serves or forks
        fork.assert_not_called()
