"""The production protections in the plan: the tiers' usage plans, the dead-letter queue, alarms, dashboard, alarm topic.

Values come from the plan JSON (``terraform show -json``) of the default
variables (the session's ``plan_json``), and from two more plans: one with an
alarm topic (its copy sends STS to moto for the account id), one with a stage
throttle below the largest tier (refused).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from . import hcl
from .conftest import plan_override
from .test_plan import DEMO_TENANTS, FUNCTIONS, PREFIX, TIERS, config, function, planned, planned_of_type, references
from .tfworkspace import NEW_PROVIDER_BLOCKS, REPO_ROOT, Workspace, copy_module, provider_override

pytestmark = pytest.mark.slow

VARIABLES = hcl.variables()
NAMESPACE = VARIABLES["metrics_namespace"]["default"]
WORKFLOW = f"{PREFIX}-workflow"
DLQ = f"{PREFIX}-workflow-dlq"


def emitted_metrics() -> set[str]:
    """Every metric name the functions emit (``emit_count("Name", ...)`` in src/)."""
    names: set[str] = set()
    for source in (REPO_ROOT / "src").rglob("*.py"):
        text = source.read_text()
        names |= set(re.findall(r'emit_count\(\s*"(\w+)"', text))
        # emit_count("A" if ... else "B", ...)
        names |= {name for call in re.findall(r"emit_count\(([^)]*)\)", text) for name in re.findall(r'"(\w+)"', call)}
    return names


# --- the tiers' usage plans and the stage's throttle ---


def test_the_tiers_differ_and_the_lowest_shows_a_429_to_a_curl_loop() -> None:
    rates = sorted(tier["rateLimit"] for tier in TIERS.values())
    assert rates[0] < rates[-1] and rates[0] <= 5


def test_the_stage_default_holds_the_demo_tenants_tiers_at_once(plan_json) -> None:
    # The control plane keeps the sum of the tenants' tiers within the stage's throttle (its ledger);
    # the demo tenants make deploy onboards must fit it.
    (values,) = planned(plan_json, "aws_api_gateway_method_settings.all")["settings"]
    assert values["throttling_rate_limit"] >= sum(TIERS[tenant["tier"]]["rateLimit"] for tenant in DEMO_TENANTS)
    assert values["throttling_burst_limit"] >= sum(TIERS[tenant["tier"]]["burstLimit"] for tenant in DEMO_TENANTS)
    environment = planned(plan_json, function("control"))["environment"][0]["variables"]
    assert (float(environment["STAGE_THROTTLE_RATE_LIMIT"]), int(environment["STAGE_THROTTLE_BURST_LIMIT"])) == (
        values["throttling_rate_limit"], values["throttling_burst_limit"])


def test_a_stage_throttle_below_the_largest_tier_is_refused(plan_workspace) -> None:
    result = plan_workspace.run("plan", "-input=false", "-no-color", "-lock=false",
                                "-var", "throttling_rate_limit=10", check=False)
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    largest = max(tier["rateLimit"] for tier in TIERS.values())
    assert "must hold at least one tenant of the largest tier" in message and f"({largest} and" in message, message


# --- dead-letter queue ---


@pytest.mark.parametrize("key", FUNCTIONS)
def test_every_function_sends_what_lambda_gives_up_on_to_the_queue(plan_json, key) -> None:
    (dead_letter,) = config(plan_json, "aws_lambda_function.function")["dead_letter_config"]
    assert "aws_sqs_queue.dead_letter.arn" in references(dead_letter, "target_arn")
    # moto drops DeadLetterConfig, so the plan is where it shows (the role's permission:
    # test_apply_moto.py).
    assert len(planned(plan_json, function(key))["dead_letter_config"]) == 1


def test_the_functions_are_created_after_their_dead_letter_policy(plan_json) -> None:
    # The role may send before Lambda checks it at the function's creation.
    (resource,) = [r for r in plan_json["configuration"]["root_module"]["resources"] if r["address"] == "aws_lambda_function.function"]
    assert resource["depends_on"] == ["aws_iam_role_policy.dead_letter"]


# --- alarms ---


def _alarms(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {alarm["alarm_name"]: alarm for alarm in planned_of_type(plan, "aws_cloudwatch_metric_alarm").values()}


def test_the_alarms_are_the_documented_ones_and_notify_nobody_by_default(plan_json) -> None:
    alarms = _alarms(plan_json)
    assert set(alarms) == {f"{PREFIX}-{name}" for name in (
        "workflows-failed", "workflows-timed-out", "api-throttled", "lambda-throttles",
        "workflow-dlq-not-empty", "authorizer-failures", "api-5xx")}
    for name, alarm in alarms.items():
        assert alarm["comparison_operator"] == "GreaterThanThreshold", name
        assert alarm["treat_missing_data"] == "notBreaching", name
        assert not alarm["alarm_actions"] and not alarm["ok_actions"], name
        assert alarm["evaluation_periods"] == 1, name


@pytest.mark.parametrize(("alarm", "metric"), [("workflows-failed", "WorkflowFailed"), ("workflows-timed-out", "WorkflowTimedOut")])
def test_workflow_outcome_alarms_sum_the_emitted_metric_over_every_tenant(plan_json, alarm, metric) -> None:
    assert metric in emitted_metrics()
    (query,) = _alarms(plan_json)[f"{PREFIX}-{alarm}"]["metric_query"]
    # The dimensions Powertools gives a single metric: tenant_id and service (the function's name,
    # POWERTOOLS_SERVICE_NAME of the workflow function).
    # (test_apply_moto.py compares the deployed variable with the function's name.)
    assert hcl.function_definitions()["environment"]["POWERTOOLS_SERVICE_NAME"] == "function_name"
    service = planned(plan_json, function("workflow"))["function_name"]
    assert query["expression"] == f"SELECT SUM({metric}) FROM SCHEMA(\"{NAMESPACE}\", service, tenant_id) WHERE service = '{service}'"
    assert (query["period"], query["return_data"]) == (300, True)
    assert _alarms(plan_json)[f"{PREFIX}-{alarm}"]["threshold"] == 0


def test_dead_letter_queue_alarm_watches_its_depth(plan_json) -> None:
    alarm = _alarms(plan_json)[f"{PREFIX}-workflow-dlq-not-empty"]
    assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum")
    assert alarm["dimensions"] == {"QueueName": DLQ}
    assert alarm["threshold"] == 0


def test_api_5xx_alarm_watches_the_stage(plan_json) -> None:
    alarm = _alarms(plan_json)[f"{PREFIX}-api-5xx"]
    assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == ("AWS/ApiGateway", "5XXError", "Sum")
    assert alarm["dimensions"] == {"ApiName": f"{PREFIX}-api", "Stage": VARIABLES["stage_name"]["default"]}


def test_authorizer_and_throttling_alarms_read_metric_filters_of_the_access_log(plan_json) -> None:
    filters = {f["metric_transformation"][0]["name"]: f for f in planned_of_type(plan_json, "aws_cloudwatch_log_metric_filter").values()}
    assert set(filters) == {"AuthorizerFailures", "ThrottledRequests"}
    access_format = json.loads(planned(plan_json, "aws_api_gateway_stage.this")["access_log_settings"][0]["format"])
    for name, metric_filter in filters.items():
        assert metric_filter["log_group_name"] == f"/aws/apigateway/{PREFIX}-api/{VARIABLES['stage_name']['default']}/access"
        (transformation,) = metric_filter["metric_transformation"]
        assert (transformation["namespace"], transformation["value"]) == (NAMESPACE, "1")
        # Every field a pattern or a dimension reads is one the access log writes.
        for field in re.findall(r"\$\.(\w+)", metric_filter["pattern"] + json.dumps(transformation["dimensions"])):
            assert field in access_format, (name, field)
    assert "AUTHORIZER_FAILURE" in filters["AuthorizerFailures"]["pattern"]
    assert "AUTHORIZER_CONFIGURATION_ERROR" in filters["AuthorizerFailures"]["pattern"]
    assert filters["ThrottledRequests"]["pattern"] == '{ $.status = "429" }'
    assert filters["ThrottledRequests"]["metric_transformation"][0]["dimensions"] == {"tenantId": "$.tenantId"}
    alarms = _alarms(plan_json)
    authorizer = alarms[f"{PREFIX}-authorizer-failures"]
    assert (authorizer["namespace"], authorizer["metric_name"], authorizer["statistic"]) == (NAMESPACE, "AuthorizerFailures", "Sum")
    (query,) = alarms[f"{PREFIX}-api-throttled"]["metric_query"]
    assert query["expression"] == f'SELECT SUM(ThrottledRequests) FROM SCHEMA("{NAMESPACE}", tenantId)'
    assert alarms[f"{PREFIX}-api-throttled"]["threshold"] == VARIABLES["throttled_requests_alarm_threshold"]["default"]


def test_lambda_throttles_alarm_sums_the_three_functions(plan_json) -> None:
    queries = {query["id"]: query for query in _alarms(plan_json)[f"{PREFIX}-lambda-throttles"]["metric_query"]}
    assert set(queries) == {"throttles", *FUNCTIONS}
    assert queries["throttles"]["return_data"] is True
    assert sorted(queries["throttles"]["expression"].split(" + ")) == sorted(f"FILL({key}, 0)" for key in FUNCTIONS)
    for key in FUNCTIONS:
        (metric,) = queries[key]["metric"]
        assert (metric["namespace"], metric["metric_name"], metric["stat"], metric["period"]) == ("AWS/Lambda", "Throttles", "Sum", 300)
        assert metric["dimensions"] == {"FunctionName": f"{PREFIX}-{key}"}
        assert not queries[key]["return_data"]


# --- dashboard ---


def test_dashboard_graphs_only_metrics_the_functions_emit_under_their_service(plan_json, plan_workspace) -> None:
    # The body holds the alarms' ARNs, known after apply: test_apply_moto.py reads the whole
    # body back (a graph per metric, every alarm); that each graph's metric is one the
    # functions emit, under the service that emits it, is checked here.
    assert planned(plan_json, "aws_cloudwatch_dashboard.this")["dashboard_name"] == f"{PREFIX}-workflows"
    graphs = plan_workspace.evaluate("local.dashboard_tenant_metrics")
    assert {graph["metric"] for graph in graphs} <= emitted_metrics()
    services = {graph["metric"]: graph["service"] for graph in graphs}
    assert services["CallbackDelivered"] == f"{PREFIX}-api"
    assert {services[name] for name in services if name.startswith("Workflow")} == {WORKFLOW}


def test_outputs_for_the_dead_letter_queue_dashboard_and_alarms(plan_json) -> None:
    outputs = plan_json["planned_values"]["outputs"]
    assert outputs["dashboard_url"]["value"] == (
        f"https://us-east-2.console.aws.amazon.com/cloudwatch/home?region=us-east-2#dashboards/dashboard/{PREFIX}-workflows")
    assert outputs["alarm_topic_arn"]["value"] is None
    assert sorted(outputs["alarm_names"]["value"]) == sorted(_alarms(plan_json))
    # Known after apply (ids, URL): test_apply_moto.py reads their values.
    assert {"dead_letter_queue_url", "dead_letter_queue_arn", "usage_plans"} <= set(plan_json["output_changes"])


# --- the optional alarm topic ---


@pytest.fixture(scope="module")
def topic_plan(terraform_setup, tf_env, tmp_path_factory, plan_workspace, plan_endpoint) -> dict[str, Any]:
    """A plan with ``create_alarm_topic = true`` and one email; STS (the account id) goes to moto too."""
    workspace: Workspace = copy_module(
        tmp_path_factory.mktemp("alarm-topic") / "module",
        binary=terraform_setup.binary,
        env=tf_env,
        strip=() if terraform_setup.provider_knows_durable_blocks else NEW_PROVIDER_BLOCKS,
        override=provider_override(terraform_setup.provider_version, endpoint=plan_endpoint,
                                   endpoint_services=("secretsmanager", "sts")),
    )
    (workspace.path / ".terraform.lock.hcl").write_text((plan_workspace.path / ".terraform.lock.hcl").read_text())
    workspace.run("init", "-input=false", "-no-color")
    workspace.run("plan", "-input=false", "-no-color", "-lock=false", "-out=topic.tfplan",
                  "-var", "create_alarm_topic=true", "-var", 'alarm_emails=["oncall@example.com"]')
    return workspace.show_json("topic.tfplan")


def test_the_alarm_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(topic_plan) -> None:
    key = planned(topic_plan, "aws_kms_key.alarms[0]")
    assert key["enable_key_rotation"] is True
    policy = json.loads(key["policy"])
    cloudwatch = next(s for s in policy["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"})
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert "aws:SourceAccount" in cloudwatch["Condition"]["StringEquals"]
    assert "aws_kms_key.alarms" in references(config(topic_plan, "aws_sns_topic.alarms"), "kms_master_key_id")
    subscription = planned(topic_plan, 'aws_sns_topic_subscription.alarm_email["oncall@example.com"]')
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "oncall@example.com")
    assert "aws_sns_topic_policy.alarms[0]" in {c["address"] for c in topic_plan["resource_changes"]}


def test_with_the_topic_every_alarm_notifies_it_on_alarm_and_ok(topic_plan) -> None:
    for address in ("aws_cloudwatch_metric_alarm.query", "aws_cloudwatch_metric_alarm.metric", "aws_cloudwatch_metric_alarm.lambda_throttles"):
        for attribute in ("alarm_actions", "ok_actions"):
            assert references(config(topic_plan, address), attribute) == ["local.alarm_actions"], (address, attribute)
    for change in topic_plan["resource_changes"]:
        if change["type"] == "aws_cloudwatch_metric_alarm":
            unknown = change["change"]["after_unknown"]
            # The topic's ARN is known after apply: one action, on ALARM and on OK.
            assert unknown["alarm_actions"] in (True, [True]) and unknown["ok_actions"] in (True, [True]), change["address"]


def test_alarm_emails_without_the_topic_are_refused(plan_workspace) -> None:
    result = plan_workspace.run("plan", "-input=false", "-no-color", "-lock=false",
                                "-var", 'alarm_emails=["oncall@example.com"]', check=False)
    assert result.returncode != 0
    assert "need create_alarm_topic = true" in " ".join(result.stderr.split())

