"""The linkage core (情報提供ネットワークシステム): agencies, codes, inquiries, oversight, disclosure.

Named ``linkage`` rather than ``core``: ``renkei._core`` is the native engine built from ``core_rs/``.
"""
