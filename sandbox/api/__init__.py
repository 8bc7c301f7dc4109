"""The gRPC surface: generated code, conversion, servicers, server, clients, auth.

Protobuf types stop here: everything inward of the servicers and clients sees
the frozen dataclasses of ``sandbox.core`` and ``sandbox.orchestrator``.
"""
