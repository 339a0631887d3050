"""Emulated AWS services on loopback: the REST API gateway, the Lambda endpoint, moto-backed DynamoDB, notifications and logs."""
