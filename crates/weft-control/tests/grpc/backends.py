"""Plain gRPC echo backends for the proxyless tests: no protobuf stubs (bytes in, bytes out),
each answering with its own name, and optionally failing the first attempts of each request
key with UNAVAILABLE so client retries can be observed, with the `grpc-previous-rpc-attempts`
header every attempt carried."""

import collections
import threading
from concurrent import futures

import grpc

SERVICE, METHOD = "echo.Echo", "Echo"
FULL_METHOD = f"/{SERVICE}/{METHOD}"


def _identity(b):
    return b


class Backend:
    """One backend on 127.0.0.1 at a kernel-chosen port."""

    def __init__(self, name, fail_first=0):
        self.name = name
        self.fail_first = fail_first
        self.calls = 0
        # Request payload -> `grpc-previous-rpc-attempts` of each attempt (0 when absent).
        self.attempts = collections.defaultdict(list)
        self.lock = threading.Lock()
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                METHOD: grpc.unary_unary_rpc_method_handler(
                    self.handle,
                    request_deserializer=_identity,
                    response_serializer=_identity,
                )
            },
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        if self.port == 0:
            raise RuntimeError(f"backend {name}: cannot bind 127.0.0.1:0")
        self.server.start()

    def handle(self, request, context):
        metadata = dict(context.invocation_metadata())
        key = request.decode(errors="replace")
        with self.lock:
            self.calls += 1
            seen = self.attempts[key]
            seen.append(int(metadata.get("grpc-previous-rpc-attempts", "0")))
            attempt = len(seen)
        if attempt <= self.fail_first:
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"{self.name}: injected failure {attempt} of {self.fail_first}",
            )
        return self.name.encode()

    def stop(self):
        self.server.stop(0)
