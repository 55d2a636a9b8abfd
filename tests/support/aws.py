"""Names of the fake AWS account the tests use (moto): the bucket the `s3` fixture creates, and the region."""

BUCKET = "modelops-test"
REGION = "us-east-1"
