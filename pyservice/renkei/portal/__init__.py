"""マイナポータル (情報提供等記録開示システム): the person's own window, usable without HTTP.

* :mod:`renkei.portal.config` — the portal's data directory: pinned JPKI CA, the ledger's and the
  witness's verifier keys, agency names;
* :mod:`renkei.portal.sessions` — sessions with idle and absolute timeouts and a CSRF token each,
  and pending logins (one challenge each, used once);
* :mod:`renkei.portal.login` — the card login: the core's challenge, the JPKI check
  (:mod:`renkei.jpki.verify`), the signature relayed to the core;
* :mod:`renkei.portal.history` — やりとり履歴: records from the core with every inclusion proof
  and the checkpoint (and its witness cosignature) checked here, names from the permission table;
* :mod:`renkei.portal.reader` — the card reader side (マイナポータルAP's role): signs a challenge
  and reports a locked or wrong PIN in the answer the portal reads.

The portal never sees a My Number: the person is the core's portal pseudonym (docs/arch/portal.md).
"""
