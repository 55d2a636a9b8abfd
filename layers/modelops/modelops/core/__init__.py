"""Small building blocks every other modelops module may import: they import nothing heavy (no numpy, no boto3)."""
