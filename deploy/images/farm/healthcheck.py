"""Health probe of an orchestrator: exit 0 when its gRPC health service says SERVING.

With ``--live`` any answer will do: an orchestrator whose database is
unreachable says NOT_SERVING (it should get no traffic) but is alive and
reconnects by itself, so restarting it would not help (liveness probes).

Compose's healthcheck and Kubernetes' exec probes run this inside the
orchestrator container.  Kubernetes' built-in ``grpc`` probe cannot be used:
it speaks plaintext only, and the orchestrator listens with TLS whenever it
listens beyond loopback.  The health service needs no token (sandbox/api/auth.py),
so the probe holds no secret but the CA.

    healthcheck.py [--live] [ADDRESS] [CA_FILE]   (default localhost:50551, /run/secrets/honeyphone/ca.pem)
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> int:
    args = sys.argv[1:]
    live = "--live" in args
    args = [a for a in args if a != "--live"]
    address = args[0] if args else "localhost:50551"
    ca_file = args[1] if len(args) > 1 else "/run/secrets/honeyphone/ca.pem"
    if ca_file == "-":
        channel = grpc.insecure_channel(address)
    else:
        with open(ca_file, "rb") as f:
            channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(f.read()))
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.RpcError as exc:
        print(f"{address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    print(f"{address}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")
    return 0 if serving or live else 1


if __name__ == "__main__":
    sys.exit(main())
