"""The witness (証人) the commission runs over the provision ledger: C2SP tlog-witness.

* :mod:`renkei.witness.note` — C2SP signed notes: parsing, Ed25519 (0x01) and cosignature/v1
  (0x04) verifier keys, verification;
* :mod:`renkei.witness.cosignature` — the witness's key: cosignature/v1 signing, its vkey;
* :mod:`renkei.witness.state` — what the witness last cosigned per log (compare-and-set, durable);
* :mod:`renkei.witness.protocol` — ``add-checkpoint``: every check of the spec, in order;
* :mod:`renkei.witness.client` — the log's side: submit a checkpoint, verify the answer.
"""
