"""The commission's (個人情報保護委員会) independent audit of the provision ledger.

* :mod:`renkei.oversight.sources` — where the records, the cosigned checkpoint and the
  agencies' facts come from (OversightService as the ``oversight`` principal, or a directory
  of tlog-tiles entry bundles);
* :mod:`renkei.oversight.audit` — the checks: checkpoint signatures (log and witnesses), every
  leaf up to the cosigned root, every permitted record against the table version in force;
* :mod:`renkei.oversight.anomalies` — per-agency patterns an auditor looks into;
* :mod:`renkei.oversight.report` — Markdown and JSON reports with PNG plots.
"""
