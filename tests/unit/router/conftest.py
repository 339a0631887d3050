"""The router's environment, set before router.app is imported (it reads it at import, as on Lambda)."""

from __future__ import annotations

import os

ROUTER_ENV = {
    "WORKFLOW_FUNCTION_NAME": "unit-workflow:live",
    "ROUTER_DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/unit-router-dlq",
}
for _name, _value in ROUTER_ENV.items():
    os.environ[_name] = _value
