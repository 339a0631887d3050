"""boto3 settings shared by every function: fail fast, retry a little, let durable steps retry more."""

from __future__ import annotations

from botocore.config import Config

# Standard retry mode, 3 attempts in all (total_max_attempts: botocore's
# "max_attempts" would count retries only), short timeouts: a throttled or slow DynamoDB
# call surfaces within seconds, and the durable step's own retry policy (with
# checkpointed back-off that costs nothing while it waits) takes over from there.
# botocore's legacy default for DynamoDB is 10 attempts with back-off of up to
# ~25 s, all of it billed time inside one invocation.
DYNAMODB_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5)

# The API function's calls to the durable-execution APIs: answer well inside the
# function's timeout, so a slow service becomes a clean 502, not a killed invocation.
LAMBDA_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=2, read_timeout=4)

# EventBridge from the callback submitter: like DynamoDB, fail within seconds and
# let the submitter step's retry policy take over.
EVENTS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5)

# The provisioner's API Gateway, SQS and EventBridge calls (control-plane calls,
# slower than the data plane's): a longer read timeout; its durable steps retry
# each call five times on top of these three attempts.
PROVISIONER_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=10)
