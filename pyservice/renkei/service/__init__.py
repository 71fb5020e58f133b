"""The gRPC service of renkei: server, mutual-TLS identities, servicers and the development PKI.

Entry points: :func:`renkei.service.server.build_server` (what ``renkei serve`` runs),
:class:`renkei.service.pki.DevelopmentCA`, and the engine interfaces in
:mod:`renkei.service.engines` that the linkage, oversight, admin and disclosure servicers call.
"""
