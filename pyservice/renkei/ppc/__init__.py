"""The Personal Information Protection Commission (個人情報保護委員会)'s PIA review: agencies submit
their 特定個人情報保護評価, reviewers decide, every decision goes into a tamper-evident log and
flows to the linkage core (:mod:`renkei.ppc.review`; the process is ``renkei ppc serve``)."""

from renkei.ppc.review import PiaReview, Submission

__all__ = ["PiaReview", "Submission"]
