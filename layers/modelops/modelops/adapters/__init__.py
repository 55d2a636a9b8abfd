"""Adapters: the only code that imports boto3 or botocore, and the local-directory stand-ins for AWS storage."""
