"""Pod attribution from the kubelet's PodResources API: the gRPC client and its refresher.

Imported only when attribution is on: grpcio and protobuf add ~16 MiB to the resident set.
"""
