"""Intermediate servers (中間サーバー): what an agency keeps beside its business systems — the
団体内統合宛名, its agency codes (符号), the 副本 it answers inquiries from — and the end-to-end
sealing of provisions (HPKE to the requester, signed by the provider). One server hosts many
agencies (tenants)."""
