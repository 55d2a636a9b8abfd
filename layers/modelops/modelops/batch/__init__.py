"""Scheduled batch scoring: S3 input folder for a run date -> predictions, rejected rows and a manifest.

Layout for run date D (YYYY-MM-DD):
    s3://<bucket>/<input-prefix>/D/*.csv|*.jsonl          input objects (keys starting with '_' or '.' are markers)
    s3://<bucket>/<output-prefix>/D/predictions/part-NNNNN.csv
    s3://<bucket>/<output-prefix>/D/rejected.csv          object, line, reason
    s3://<bucket>/<output-prefix>/D/_manifest.json         written last: the commit; downstream waits for it
    s3://<bucket>/<output-prefix>/D/_attempts/<attempt>/   work area of one run attempt (removed after commit)
"""
