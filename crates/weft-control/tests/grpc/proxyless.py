"""A real grpcio proxyless xDS client against a Weft control plane, driven by
tests/grpc_proxyless.rs over stdin/stdout (one JSON object per line):

1. starts the backends and prints {"ports": {name: port}};
2. reads {"xds": "HOST:PORT", "node_id": ...}: where the control plane serves ADS;
3. runs every scenario through `xds:///` channels and prints one JSON object of what each
   RPC returned, what every backend saw, and the client's own CSDS view (ACKED/NACKED per
   resource), then exits.

Every RPC has a deadline and every loop a fixed count; a watchdog ends the process after
--max-lifetime seconds whatever happens, and EOF on stdin ends it before the scenarios."""

import argparse
import collections
import json
import os
import sys
import threading

import grpc

from backends import FULL_METHOD, Backend

FQDN_TARGET = "xds:///echo.default.svc.cluster.local:7070"
SHORT_TARGET = "xds:///echo:7070"
# The first RPC of a channel waits for LDS, RDS, CDS and EDS in turn.
FIRST_DEADLINE = 30.0
DEADLINE = 5.0


def _identity(b):
    return b


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def watchdog(seconds):
    def expire():
        sys.stderr.write(f"proxyless.py: max lifetime of {seconds}s reached\n")
        sys.stderr.flush()
        os._exit(3)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


class Unreachable(Exception):
    """The first RPC of a channel failed: the xDS configuration never became usable."""


class Client:
    def __init__(self, target):
        self.target = target
        self.channel = grpc.insecure_channel(target)
        self.rpc = self.channel.unary_unary(
            FULL_METHOD, request_serializer=_identity, response_deserializer=_identity
        )
        self.first = True

    def call(self, payload, metadata=()):
        """One RPC: the answering backend's name, or `status:CODE` and the details."""
        first, self.first = self.first, False
        try:
            response = self.rpc(
                payload,
                metadata=metadata,
                timeout=FIRST_DEADLINE if first else DEADLINE,
                wait_for_ready=True,
            )
            return response.decode(), None
        except grpc.RpcError as e:
            if first:
                # With the channel (so its XdsClient) still alive: a NACK shows here.
                raise Unreachable(
                    {
                        "error": f"{self.target}: {e.code().name}: {e.details()}",
                        "csds": csds(),
                    }
                ) from e
            return "status:" + e.code().name, e.details()

    def run(self, n, metadata=(), payload=b"ping"):
        counts = collections.Counter()
        details = set()
        for _ in range(n):
            result, detail = self.call(payload, metadata)
            counts[result] += 1
            if detail is not None:
                details.add(detail)
        return {"n": n, "counts": dict(counts), "details": sorted(details)}

    def close(self):
        self.channel.close()


def csds():
    """The client's own view of every xDS resource it subscribed to (grpcio-csds reads the
    same private dump)."""
    from envoy.admin.v3 import config_dump_shared_pb2
    from envoy.service.status.v3 import csds_pb2
    from grpc._cython import cygrpc

    # Fields are read directly: the resources themselves (Any) hold types this process
    # never imported, which json_format cannot print.
    status_name = config_dump_shared_pb2.ClientResourceStatus.Name
    response = csds_pb2.ClientStatusResponse.FromString(cygrpc.dump_xds_configs())
    out = []
    for config in response.config:
        for r in config.generic_xds_configs:
            out.append(
                {
                    "scope": config.client_scope,
                    "type_url": r.type_url,
                    "name": r.name,
                    "status": status_name(r.client_status),
                    "error": r.error_state.details,
                }
            )
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-lifetime", type=float, default=120.0)
    parser.add_argument("--split-rpcs", type=int, default=400)
    args = parser.parse_args()
    watchdog(args.max_lifetime)

    backends = {
        "v1": Backend("v1"),
        "v2": Backend("v2"),
        "sink": Backend("sink"),
        "flaky": Backend("flaky", fail_first=2),
    }
    emit({"ports": {name: b.port for name, b in backends.items()}})
    line = sys.stdin.readline()
    if not line:
        return 2
    control = json.loads(line)
    os.environ["GRPC_XDS_BOOTSTRAP_CONFIG"] = json.dumps(
        {
            "xds_servers": [
                {
                    "server_uri": control["xds"],
                    "channel_creds": [{"type": "insecure"}],
                    "server_features": ["xds_v3"],
                }
            ],
            "node": {
                "id": control["node_id"],
                "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default"},
            },
        }
    )

    try:
        out = scenarios(backends, args.split_rpcs)
    except Unreachable as e:
        emit(e.args[0])
        return 1
    finally:
        for b in backends.values():
            b.stop()
    emit(out)
    return 0


def scenarios(backends, split_rpcs):
    out = {}
    fqdn = Client(FQDN_TARGET)
    out["canary"] = fqdn.run(50, metadata=(("x-canary", "true"),))
    out["split"] = fqdn.run(split_rpcs)
    out["sink"] = fqdn.run(5, metadata=(("x-sink", "true"),))
    sink_before = backends["sink"].calls
    out["fault"] = fqdn.run(20, metadata=(("x-fault", "true"),))
    out["fault"]["backend_calls"] = backends["sink"].calls - sink_before
    for name, header in (("retry", "three"), ("retry_once", "one")):
        payload = f"{name}-key"
        result, detail = fqdn.call(payload.encode(), metadata=(("x-retry", header),))
        with backends["flaky"].lock:
            attempts = list(backends["flaky"].attempts[payload])
        out[name] = {"result": result, "details": detail, "attempts": attempts}
    short = Client(SHORT_TARGET)
    out["short_name"] = short.run(10, metadata=(("x-canary", "true"),))
    # While both channels (so both XdsClients) are alive.
    out["csds"] = csds()
    out["backend_calls"] = {name: b.calls for name, b in backends.items()}
    fqdn.close()
    short.close()
    return out


if __name__ == "__main__":
    sys.exit(main())
