"""API Gateway's API keys and usage plans on loopback: the calls the provisioner makes, as AWS answers them.

The provisioner (src/provisioner) creates each tenant's metering key and puts it
in its tier's usage plan with boto3's ``apigateway`` client; locally its
``AWS_ENDPOINT_URL_API_GATEWAY`` points here. The gateway's usage plans
(proving-ground/local/services/throttle.py) read the keys and plans from the
same :class:`ApiKeyStore`, so a key created at runtime is metered at once and a
deleted one is refused (403) at once, with no restart.

Only what the provisioner calls, with AWS's behaviour where moto's differs:

* ``CreateApiKey`` (POST /apikeys), ``GetApiKeys`` (GET /apikeys, ``name`` and
  ``includeValues``), ``GetApiKey`` (GET /apikeys/{id}, ``includeValue``),
  ``DeleteApiKey`` (DELETE /apikeys/{id}): a deleted key leaves every plan it was in;
* ``CreateUsagePlanKey`` (POST /usageplans/{id}/keys): a key already in the plan,
  or in another plan of the same stage, is 409 ``ConflictException``;
* ``DeleteUsagePlanKey`` (DELETE /usageplans/{id}/keys/{keyId}), ``GetUsagePlanKeys``,
  ``GetUsagePlans``: an unknown plan or key is 404 ``NotFoundException``.

Collections are ``{"item": [...]}`` on the wire, as API Gateway sends them
(boto3 calls the member ``items``).

One usage plan per tier of ``src/shared/tiers.json``, named ``<prefix>-<tier>`` as
operations.tf names them (the provisioner finds them by name); their ids are the tier names. Like moto, it keeps everything in memory:
the stack's start reconciles every ACTIVE and SUSPENDED tenant, which creates
their keys again.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from local.services.http_base import DEFAULT_HOST, LocalHttpService, Request, Response
from shared.tenants import Tier, tiers

_ALPHANUMERIC = string.ascii_lowercase + string.digits
_KEY_PATH = re.compile(r"^/apikeys/([^/]+)$")
_PLAN_KEYS_PATH = re.compile(r"^/usageplans/([^/]+)/keys$")
_PLAN_KEY_PATH = re.compile(r"^/usageplans/([^/]+)/keys/([^/]+)$")


@dataclass
class ApiKey:
    """One API key."""

    key_id: str
    name: str
    value: str
    enabled: bool = True
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def shape(self, include_value: bool) -> dict[str, Any]:
        answer = {"id": self.key_id, "name": self.name, "enabled": self.enabled, "description": self.description,
                  "createdDate": int(self.created), "lastUpdatedDate": int(self.created), "stageKeys": [],
                  "tags": dict(self.tags)}
        if include_value:
            answer["value"] = self.value
        return answer


class AwsError(Exception):
    """An error API Gateway answers: status, ``x-amzn-ErrorType`` and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class ApiKeyStore:
    """The keys and the tier plans (all on the one stage), thread-safe."""

    def __init__(self, name_prefix: str, plans: dict[str, Tier] | None = None) -> None:
        self.name_prefix = name_prefix
        self.plans: dict[str, Tier] = dict(plans if plans is not None else tiers())
        self._keys: dict[str, ApiKey] = {}
        self._plan_keys: dict[str, set[str]] = {plan_id: set() for plan_id in self.plans}
        self._lock = threading.Lock()

    def create_key(self, body: dict[str, Any]) -> ApiKey:
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise AwsError(400, "BadRequestException", "API Key name is required")
        with self._lock:
            key = ApiKey(key_id="".join(secrets.choice(_ALPHANUMERIC) for _ in range(10)), name=name,
                         value=str(body.get("value") or secrets.token_urlsafe(30)[:40]),
                         enabled=bool(body.get("enabled", False)), description=str(body.get("description", "")),
                         tags=dict(body.get("tags") or {}))
            self._keys[key.key_id] = key
            return key

    def keys(self, name: str | None = None) -> list[ApiKey]:
        with self._lock:
            return [key for key in self._keys.values() if name is None or key.name.startswith(name)]

    def key(self, key_id: str) -> ApiKey:
        with self._lock:
            return self._key(key_id)

    def _key(self, key_id: str) -> ApiKey:
        key = self._keys.get(key_id)
        if key is None:
            raise AwsError(404, "NotFoundException", "Invalid API Key identifier specified")
        return key

    def _plan(self, plan_id: str) -> set[str]:
        members = self._plan_keys.get(plan_id)
        if members is None:
            raise AwsError(404, "NotFoundException", "Invalid Usage Plan ID specified")
        return members

    def delete_key(self, key_id: str) -> None:
        with self._lock:
            self._key(key_id)
            del self._keys[key_id]
            for members in self._plan_keys.values():  # AWS: a deleted key is in no plan any more
                members.discard(key_id)

    def add_to_plan(self, plan_id: str, key_id: str) -> ApiKey:
        with self._lock:
            members = self._plan(plan_id)
            key = self._key(key_id)
            if key_id in members:
                raise AwsError(409, "ConflictException", f"Usage Plan Key {key_id} already exists in {plan_id}")
            for other, other_members in self._plan_keys.items():
                if key_id in other_members:
                    raise AwsError(409, "ConflictException",
                                   f"Usage Plan {plan_id} cannot be added because API Key {key_id} cannot reference "
                                   f"multiple Usage Plans with the same API Stage ({other})")
            members.add(key_id)
            return key

    def remove_from_plan(self, plan_id: str, key_id: str) -> None:
        with self._lock:
            members = self._plan(plan_id)
            if key_id not in members:
                raise AwsError(404, "NotFoundException", "Invalid Usage Plan Key identifier specified")
            members.discard(key_id)

    def plan_keys(self, plan_id: str) -> list[ApiKey]:
        with self._lock:
            return [self._keys[key_id] for key_id in sorted(self._plan(plan_id))]

    # -- what the gateway's usage plans read ------------------------------------------------------

    def plan_of_value(self, value: str) -> tuple[str, str, Tier] | None:
        """``(key id, key name, tier)`` of the enabled key with this value that is in a plan; else None."""
        with self._lock:
            for key in self._keys.values():
                if key.value == value and key.enabled:
                    for plan_id, members in self._plan_keys.items():
                        if key.key_id in members:
                            return key.key_id, key.name, self.plans[plan_id]
            return None

    def counts(self) -> dict[str, int]:
        """How many keys exist and how many are in a plan (tests count orphans with it)."""
        with self._lock:
            return {"keys": len(self._keys), "planKeys": sum(len(members) for members in self._plan_keys.values())}


def _key_summary(key: ApiKey) -> dict[str, Any]:
    return {"id": key.key_id, "type": "API_KEY", "name": key.name, "value": key.value}


class LocalApiGateway(LocalHttpService):
    """The REST endpoints of :class:`ApiKeyStore` (API Gateway's control plane paths)."""

    name = "apigateway"

    def __init__(self, store: ApiKeyStore, host: str = DEFAULT_HOST, port: int = 0) -> None:
        super().__init__(host, port)
        self.store = store

    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except AwsError as error:
            return Response.json(error.status, {"message": str(error)}, {"x-amzn-ErrorType": error.code})
        except ValueError as error:
            return Response.json(400, {"message": f"malformed request: {error}"}, {"x-amzn-ErrorType": "BadRequestException"})

    def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        body = json.loads(request.body) if request.body else {}
        if path == "/apikeys" and method == "POST":
            return Response.json(201, self.store.create_key(body).shape(include_value=True))
        if path == "/apikeys" and method == "GET":
            include = request.query.get("includeValues") == "true"
            return Response.json(200, {"item": [key.shape(include) for key in self.store.keys(request.query.get("name"))]})
        if match := _KEY_PATH.match(path):
            key_id = unquote(match.group(1))
            if method == "GET":
                return Response.json(200, self.store.key(key_id).shape(request.query.get("includeValue") == "true"))
            if method == "DELETE":
                self.store.delete_key(key_id)
                return Response(202)
        if match := _PLAN_KEYS_PATH.match(path):
            plan_id = unquote(match.group(1))
            if method == "POST":
                if body.get("keyType") != "API_KEY":
                    raise AwsError(400, "BadRequestException", "keyType must be API_KEY")
                return Response.json(201, _key_summary(self.store.add_to_plan(plan_id, str(body.get("keyId")))))
            if method == "GET":
                return Response.json(200, {"item": [_key_summary(key) for key in self.store.plan_keys(plan_id)]})
        if match := _PLAN_KEY_PATH.match(path):
            if method == "DELETE":
                self.store.remove_from_plan(unquote(match.group(1)), unquote(match.group(2)))
                return Response(202)
        if path == "/usageplans" and method == "GET":
            return Response.json(200, {"item": [
                {"id": plan_id, "name": f"{self.store.name_prefix}-{plan_id}", "throttle": {"rateLimit": tier.rate_limit, "burstLimit": tier.burst_limit},
                 "quota": {"limit": tier.daily_quota, "period": "DAY", "offset": 0}}
                for plan_id, tier in self.store.plans.items()]})
        raise AwsError(404, "NotFoundException", f"no route {method} {path} in the local API Gateway")
