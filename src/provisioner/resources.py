"""A tenant's runtime resources: its metering key in its tier's usage plan, its callback queue and rule,
and the end of its waiting workflows (I/O edge).

Every call is idempotent, so a step retried after a crash, a timeout or a
call that landed late does the same thing again: a create finds what exists
(by the names of ``shared.tenants.tenant_resource_names``), a delete
tolerates "not found". Nothing here knows about durable executions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from shared.contract import callback_waiting_event
from shared.tenants import OFFBOARDED_ERROR_DATA, OFFBOARDED_ERROR_TYPE, OFFBOARDED_REASON, tenant_resource_names

logger = logging.getLogger(__name__)

QUEUE_ATTRIBUTES = {"SqsManagedSseEnabled": "true"}
TARGET_ID = "tenant-queue"
# The tags of a metering key: the IAM policy lets the provisioner delete only keys tagged with its deployment.
DEPLOYMENT_TAG = "deployment"
TENANT_TAG = "tenant"
NOT_FOUND_CODES = frozenset({"NotFoundException", "ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue",
                             "QueueDoesNotExist"})
OPEN_WORKFLOW_STATUSES = ("STARTED", "WAITING_FOR_CALLBACK")
# How often (and how long apart) offboarding looks again for a workflow that has
# started but not yet registered its callback, before it goes on without it.
STARTING_PASSES = 3
STARTING_PAUSE_SECONDS = 2.0


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def callback_event_pattern(tenant_id: str) -> dict[str, Any]:
    """The rule's event pattern: the contract's waiting event, this tenant's only."""
    shape = callback_waiting_event()
    return {"source": [shape["source"]], "detail-type": [shape["detailType"]], "detail": {"tenantId": [tenant_id]}}


def callback_queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """EventBridge may send to the queue for this tenant's rule only (no other rule, no other principal)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "WaitingEventsOfThisTenantsRule",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
        }],
    }


def kept_key(keys: list[dict[str, Any]]) -> dict[str, Any]:
    """Of the keys named after one tenant (more than one only after a lost answer), the one to keep:
    the oldest, by id among equals, whatever order the listing had."""
    return min(keys, key=lambda key: (str(key.get("createdDate", "")), str(key["id"])))


@dataclass(frozen=True)
class MeteringKey:
    """A tenant's internal API Gateway key (never handed out; the authorizer returns it)."""

    key_id: str
    value: str


class TenantResources:
    """Creates and deletes one deployment's per-tenant resources.

    Args:
        prefix: The deployment's name prefix (every name starts with it).
        event_bus: The bus the workflows put their waiting events on.
        usage_plans: The usage plan id of each tier; None: found by name (``<prefix>-<tier>``,
            operations.tf's names) on first use.
        apigateway, sqs, events, lambda_client: boto3 clients.
        workflows_table: The workflow registry (a boto3 ``Table``).
    """

    def __init__(self, *, prefix: str, event_bus: str, apigateway: Any, sqs: Any, events: Any, lambda_client: Any,
                 workflows_table: Any, usage_plans: Mapping[str, str] | None = None, sleep: Any = time.sleep) -> None:
        self.prefix = prefix
        self.event_bus = event_bus
        self._usage_plans = dict(usage_plans) if usage_plans is not None else None
        self.apigateway = apigateway
        self.sqs = sqs
        self.events = events
        self.lambda_client = lambda_client
        self.workflows_table = workflows_table
        self.sleep = sleep

    # -- the metering key -------------------------------------------------------------------------

    @property
    def usage_plans(self) -> dict[str, str]:
        """The usage plan id of each tier: the plans named ``<prefix>-<tier>`` (operations.tf)."""
        if self._usage_plans is None:
            plans: dict[str, str] = {}
            for page in self.apigateway.get_paginator("get_usage_plans").paginate():
                for plan in page.get("items", []):
                    name = str(plan.get("name", ""))
                    if name.startswith(f"{self.prefix}-"):
                        plans[name.removeprefix(f"{self.prefix}-")] = plan["id"]
            self._usage_plans = plans
        return self._usage_plans

    def _keys_named(self, name: str) -> list[dict[str, Any]]:
        found = []
        for page in self.apigateway.get_paginator("get_api_keys").paginate(nameQuery=name, includeValues=True):
            found.extend(key for key in page.get("items", []) if key.get("name") == name)
        return found

    def ensure_metering_key(self, tenant_id: str, tier: str) -> MeteringKey:
        """The tenant's key, created if missing, in its tier's plan and in no other."""
        name = tenant_resource_names(self.prefix, tenant_id).metering_key
        keys = self._keys_named(name)
        if not keys:
            created = self.apigateway.create_api_key(
                name=name, enabled=True, generateDistinctId=True,
                description=f"Metering key of tenant {tenant_id} (never a credential; the authorizer returns it).",
                tags={DEPLOYMENT_TAG: self.prefix, TENANT_TAG: tenant_id})
            # CreateApiKey is not idempotent: a first attempt that landed but whose answer was
            # lost (a timeout, a 5xx) makes botocore's retry create a second key of the same
            # name. Read them back, so this attempt keeps the same one as any later attempt would.
            keys = self._keys_named(name) or [created]
        key = kept_key(keys)
        for extra in keys:  # only ever from a create whose answer was lost: one key is enough
            if extra["id"] != key["id"]:
                self._delete_key(extra["id"])
        target = self.usage_plans.get(tier)
        if target is None:
            raise RuntimeError(f"no usage plan named {self.prefix}-{tier} (operations.tf creates one per tier)")
        for plan_id in self.usage_plans.values():
            if plan_id != target:
                self._remove_from_plan(plan_id, key["id"])
        try:
            self.apigateway.create_usage_plan_key(usagePlanId=target, keyId=key["id"], keyType="API_KEY")
        except ClientError as error:
            if _code(error) != "ConflictException":  # already in the plan
                raise
        value = key.get("value") or self.apigateway.get_api_key(apiKey=key["id"], includeValue=True)["value"]
        return MeteringKey(key["id"], value)

    def _remove_from_plan(self, plan_id: str, key_id: str) -> None:
        # Read first: most calls find the key in no other plan, and a read is cheaper
        # than a refused delete (the delete still tolerates "not found": another
        # attempt may have removed it meanwhile).
        keys = {key["id"] for page in self.apigateway.get_paginator("get_usage_plan_keys").paginate(usagePlanId=plan_id)
                for key in page.get("items", [])}
        if key_id not in keys:
            return
        try:
            self.apigateway.delete_usage_plan_key(usagePlanId=plan_id, keyId=key_id)
        except ClientError as error:
            if _code(error) not in NOT_FOUND_CODES:
                raise

    def _delete_key(self, key_id: str) -> None:
        for plan_id in self.usage_plans.values():
            self._remove_from_plan(plan_id, key_id)
        try:
            self.apigateway.delete_api_key(apiKey=key_id)
        except ClientError as error:
            if _code(error) not in NOT_FOUND_CODES:
                raise

    def remove_metering_key(self, tenant_id: str) -> int:
        """Take the tenant's key(s) out of every tier's plan and delete them; how many there were."""
        keys = self._keys_named(tenant_resource_names(self.prefix, tenant_id).metering_key)
        for key in keys:
            self._delete_key(key["id"])
        return len(keys)

    # -- the callback route -----------------------------------------------------------------------

    def ensure_callback_route(self, tenant_id: str) -> str:
        """The tenant's encrypted queue, its rule on the bus, the queue policy and the target; the queue URL."""
        names = tenant_resource_names(self.prefix, tenant_id)
        queue_url = self.sqs.create_queue(QueueName=names.callback_queue, Attributes=QUEUE_ATTRIBUTES)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule_arn = self.events.put_rule(
            Name=names.callback_rule, EventBusName=self.event_bus, State="ENABLED",
            Description=f"Waiting events of tenant {tenant_id}, to its queue.",
            EventPattern=json.dumps(callback_event_pattern(tenant_id)))["RuleArn"]
        # The policy first, then the target: events are delivered only once the queue lets EventBridge in.
        self.sqs.set_queue_attributes(QueueUrl=queue_url,
                                      Attributes={"Policy": json.dumps(callback_queue_policy(queue_arn, rule_arn))})
        answer = self.events.put_targets(Rule=names.callback_rule, EventBusName=self.event_bus,
                                         Targets=[{"Id": TARGET_ID, "Arn": queue_arn}])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the rule's target: {answer.get('FailedEntries')}")
        return queue_url

    def remove_callback_route(self, tenant_id: str) -> None:
        """The target, the rule and the queue, whichever of them exist."""
        names = tenant_resource_names(self.prefix, tenant_id)
        for call, arguments in (
            (self.events.remove_targets, {"Rule": names.callback_rule, "EventBusName": self.event_bus, "Ids": [TARGET_ID]}),
            (self.events.delete_rule, {"Name": names.callback_rule, "EventBusName": self.event_bus}),
        ):
            try:
                call(**arguments)
            except ClientError as error:
                if _code(error) not in NOT_FOUND_CODES:
                    raise
        try:
            queue_url = self.sqs.get_queue_url(QueueName=names.callback_queue)["QueueUrl"]
            self.sqs.delete_queue(QueueUrl=queue_url)
        except ClientError as error:
            if _code(error) not in NOT_FOUND_CODES:
                raise

    # -- the waiting workflows --------------------------------------------------------------------

    def open_workflows(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's workflows still STARTED or WAITING_FOR_CALLBACK (a Query on its partition)."""
        from boto3.dynamodb.conditions import Attr, Key  # noqa: PLC0415

        found: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {
            "KeyConditionExpression": Key("tenantId").eq(tenant_id) & Key("recordId").begins_with("workflow#"),
            "FilterExpression": Attr("status").is_in(list(OPEN_WORKFLOW_STATUSES)),
            "ProjectionExpression": "workflowId, #status, callbackId",
            "ExpressionAttributeNames": {"#status": "status"},
            "ConsistentRead": True,
        }
        while True:
            page = self.workflows_table.query(**arguments)
            found.extend(page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                return found
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def fail_waiting_workflows(self, tenant_id: str) -> int:
        """Fail the callback of every waiting workflow of the tenant; how many were failed.

        A workflow that has started but not yet registered its wait gets a few
        more looks; one answered or timed out meanwhile is skipped (the durable
        service says the callback is closed).
        """
        failed: set[str] = set()
        for attempt in range(STARTING_PASSES):
            starting = 0
            for workflow in self.open_workflows(tenant_id):
                callback_id = workflow.get("callbackId")
                if not callback_id:
                    starting += 1
                    continue
                if callback_id in failed:
                    continue
                try:
                    self.lambda_client.send_durable_execution_callback_failure(
                        CallbackId=callback_id,
                        Error={"ErrorType": OFFBOARDED_ERROR_TYPE, "ErrorMessage": OFFBOARDED_REASON,
                               "ErrorData": OFFBOARDED_ERROR_DATA})
                except ClientError as error:
                    if _code(error) not in {*NOT_FOUND_CODES, "CallbackTimeoutException"}:
                        raise
                failed.add(callback_id)
            if not starting:
                break
            if attempt < STARTING_PASSES - 1:
                self.sleep(STARTING_PAUSE_SECONDS)
            else:
                logger.warning("workflows still starting after offboarding began", extra={"count": starting})
        return len(failed)
