"""Pod attribution from the kubelet's PodResources API: the gRPC client and its refresher.

Imported only when attribution is on: grpcio and protobuf cost several MiB of every process's memory.
"""
