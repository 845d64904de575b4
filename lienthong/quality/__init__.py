"""Data quality: the law's rules on dossier data as Great Expectations suites (config/expectations).

Entry points, in :mod:`lienthong.quality.validator`: ``validate_submissions`` (many dossiers per
call), ``validate_submission``, ``validate_rows`` (digitized components, agency results) and
``supplement_text`` (Form 02).
"""
