"""What one process's server knows of its traffic: the requests being
served and whether it is draining. The server makes one (`serve`), hands
it to its HTTP server and to `make_app`; handlers count themselves in it
and read `draining`; only the server starts a drain."""


class Traffic:
    """Requests in flight in this process, and whether it drains."""

    def __init__(self):
        self.in_flight = 0
        self.draining = False

    def started(self):
        self.in_flight += 1

    def finished(self):
        self.in_flight -= 1
