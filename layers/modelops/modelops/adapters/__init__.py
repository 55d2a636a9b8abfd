"""Adapters: the only code that talks to AWS or the disk (boto3, botocore, local directories)."""
