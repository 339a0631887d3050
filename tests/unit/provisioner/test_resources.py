"""The tenant's metering key (provisioner/resources.py): one key, whatever a lost CreateApiKey answer left behind."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from provisioner.resources import TenantResources, kept_key


class FakeKeys:
    """API Gateway's keys and usage plans, in memory (only the calls the metering key makes).

    ``lost_answers``: how many CreateApiKey calls land twice, as when the first attempt's answer
    is lost and botocore's retry creates the key again.
    """

    def __init__(self, lost_answers: int = 0) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.plans: dict[str, set[str]] = {"starter": set(), "business": set()}
        self.lost_answers = lost_answers
        self._ids = itertools.count(1)

    def _create(self, name: str) -> dict[str, Any]:
        number = next(self._ids)
        key = {"id": f"k{number:03d}", "name": name, "value": f"v{number}", "createdDate": 1_700_000_000 + number}
        self.keys[key["id"]] = key
        return dict(key)

    def create_api_key(self, *, name: str, **_: Any) -> dict[str, Any]:
        if self.lost_answers:
            self.lost_answers -= 1
            self._create(name)  # landed; its answer never reached the caller
        return self._create(name)

    def get_paginator(self, operation: str) -> Any:
        fake = self

        class Pages:
            def paginate(self, **arguments: Any) -> list[dict[str, Any]]:
                if operation == "get_api_keys":
                    return [{"items": [dict(key) for key in fake.keys.values()
                                       if key["name"].startswith(arguments.get("nameQuery", ""))]}]
                if operation == "get_usage_plan_keys":
                    return [{"items": [{"id": key_id} for key_id in sorted(fake.plans[arguments["usagePlanId"]])]}]
                return [{"items": [{"id": plan, "name": f"p-{plan}"} for plan in fake.plans]}]

        return Pages()

    def create_usage_plan_key(self, *, usagePlanId: str, keyId: str, **_: Any) -> None:  # noqa: N803 - boto3's names
        self.plans[usagePlanId].add(keyId)

    def delete_usage_plan_key(self, *, usagePlanId: str, keyId: str) -> None:  # noqa: N803
        self.plans[usagePlanId].discard(keyId)

    def delete_api_key(self, *, apiKey: str) -> None:  # noqa: N803
        del self.keys[apiKey]


def tenant_resources(fake: FakeKeys) -> TenantResources:
    return TenantResources(prefix="p", event_bus="bus", apigateway=fake, sqs=None, events=None, lambda_client=None,
                           workflows_table=None)


@pytest.mark.parametrize("lost_answers", [0, 1])
def test_one_key_in_its_tiers_plan_even_when_a_create_answer_was_lost(lost_answers: int) -> None:
    # GIVEN a CreateApiKey that (with lost_answers) landed twice: botocore retried a lost answer
    fake = FakeKeys(lost_answers)
    # WHEN the metering key is ensured
    key = tenant_resources(fake).ensure_metering_key("t1", "starter")
    # THEN one key is left, the oldest, in the starter plan only, and the step's answer names it
    assert list(fake.keys) == ["k001"]
    assert (key.key_id, key.value) == ("k001", "v1")
    assert fake.plans == {"starter": {"k001"}, "business": set()}


def test_a_repeated_step_keeps_the_same_key() -> None:
    fake = FakeKeys(lost_answers=1)
    resources = tenant_resources(fake)
    first = resources.ensure_metering_key("t1", "starter")
    assert resources.ensure_metering_key("t1", "starter") == first
    assert list(fake.keys) == [first.key_id]


def test_a_tier_change_moves_the_key_to_the_other_plan() -> None:
    fake = FakeKeys()
    resources = tenant_resources(fake)
    key = resources.ensure_metering_key("t1", "starter")
    assert resources.ensure_metering_key("t1", "business") == key
    assert fake.plans == {"starter": set(), "business": {key.key_id}}


@pytest.mark.parametrize(("keys", "kept"), [
    ([{"id": "b", "createdDate": 2}, {"id": "a", "createdDate": 1}], "a"),   # the oldest, whatever the order
    ([{"id": "a", "createdDate": 1}, {"id": "b", "createdDate": 2}], "a"),
    ([{"id": "z", "createdDate": 5}, {"id": "c", "createdDate": 5}], "c"),   # the same second: by id
    ([{"id": "only"}], "only"),                                              # no date: by id
])
def test_the_key_kept_is_the_oldest_then_the_lowest_id(keys: list[dict[str, Any]], kept: str) -> None:
    assert kept_key(keys)["id"] == kept
