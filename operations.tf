# =============================================================================
# Per-tenant usage plans: rate, burst and daily quota from demo_tenants.json
# =============================================================================

locals {
  # Each seeded tenant's plan, from its record in src/shared/demo_tenants.json
  # (proving-ground/local/services/throttle.py builds the local gateway's plans from the same fields).
  # One plan per tenant: its key gets a token bucket and a daily count of its
  # own, so one tenant's flood never throttles another.
  tenant_usage_plans = {
    for tenant_id in local.seeded_tenant_ids : tenant_id => {
      tier        = try(local.demo_tenants[tenant_id].tier, "custom")
      rate_limit  = local.demo_tenants[tenant_id].throttleRateLimit
      burst_limit = local.demo_tenants[tenant_id].throttleBurstLimit
      daily_quota = local.demo_tenants[tenant_id].dailyQuota
    }
  }
  # The stage's default method throttle is shared by every tenant on a method:
  # it must hold all plans at once, or a tenant within its plan could still
  # crowd out the others.
  usage_plan_rate_sum  = sum(concat([0], [for plan in values(local.tenant_usage_plans) : plan.rate_limit]))
  usage_plan_burst_sum = sum(concat([0], [for plan in values(local.tenant_usage_plans) : plan.burst_limit]))

  # The routes without the authorizer (POST /callbacks/{callbackToken}) carry no
  # tenant key, so no usage plan meters them: method settings of their own
  # throttle them. API Gateway names a method of a nested path with every "/"
  # of the path escaped as "~1": "~1callbacks~1{callbackToken}/POST" (the
  # provider passes method_path through as is).
  public_method_paths = { for key, route in local.public_proxy_routes : key => "${replace(route.path, "/", "~1")}/${route.method}" }
  # Their numbers: the stage's default method throttle (a bucket of their own at
  # the stage's rate and burst, as every method has), unless the variables set
  # others. The local gateway enforces the same defaults (proving-ground/local/services/throttle.py).
  public_route_rate_limit  = coalesce(var.callback_throttling_rate_limit, var.throttling_rate_limit)
  public_route_burst_limit = coalesce(var.callback_throttling_burst_limit, var.throttling_burst_limit)
}

resource "aws_api_gateway_usage_plan" "tenant" {
  for_each = local.tenant_usage_plans

  name        = "${local.name_prefix}-${each.key}"
  description = "Usage plan of tenant ${each.key}, tier ${each.value.tier} (src/shared/demo_tenants.json)."

  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
  }

  throttle_settings {
    rate_limit  = each.value.rate_limit
    burst_limit = each.value.burst_limit
  }

  quota_settings {
    limit  = each.value.daily_quota
    period = "DAY"
  }

  lifecycle {
    precondition {
      condition     = var.throttling_rate_limit >= local.usage_plan_rate_sum && var.throttling_burst_limit >= local.usage_plan_burst_sum
      error_message = "throttling_rate_limit (${var.throttling_rate_limit}) and throttling_burst_limit (${var.throttling_burst_limit}) must be at least the sums of the tenants' plans (${local.usage_plan_rate_sum} and ${local.usage_plan_burst_sum}, src/shared/demo_tenants.json), or tenants within their plans throttle each other."
    }
  }
}

# The tenant's API key (the one the authorizer returns as usageIdentifierKey)
# in the tenant's plan. A tenant onboarded outside Terraform needs the same:
# an API key in a usage plan of this stage, or API Gateway answers 403.
resource "aws_api_gateway_usage_plan_key" "tenant" {
  for_each = local.tenant_usage_plans

  key_id        = aws_api_gateway_api_key.demo[each.key].id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.tenant[each.key].id
}

resource "aws_api_gateway_method_settings" "public_routes" {
  #checkov:skip=CKV_AWS_225:Every answer on the token route is per token and single-use; a cache would replay a callback's answer.
  for_each = local.public_method_paths

  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = each.value

  settings {
    throttling_rate_limit  = local.public_route_rate_limit
    throttling_burst_limit = local.public_route_burst_limit
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false
    caching_enabled        = false
    cache_data_encrypted   = true
  }

  # The stage-wide defaults first, then this override.
  depends_on = [aws_api_gateway_method_settings.all]
}

# =============================================================================
# Dead-letter queue: asynchronous invocations Lambda gives up on
# =============================================================================

# POST /workflow invokes workflow:live asynchronously. When Lambda cannot start
# the execution (throttled or failing past the retries, or older than the
# maximum event age), the event ({"workflowId", "request"}) lands here, with
# the error in the message attributes, instead of being dropped. Encrypted with
# SQS's own key (SSE-SQS: Lambda needs no KMS permission to send).
resource "aws_sqs_queue" "dead_letter" {
  name                      = "${local.name_prefix}-workflow-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600 # 14 days, SQS's longest: time to inspect and redrive
}

# How long and how often Lambda tries an event of workflow:live (the alias API
# Gateway invokes) before it goes to the dead-letter queue.
resource "aws_lambda_function_event_invoke_config" "workflow_live" {
  function_name                = aws_lambda_function.function["workflow"].function_name
  qualifier                    = aws_lambda_alias.workflow_live.name
  maximum_event_age_in_seconds = var.workflow_max_event_age_seconds
  maximum_retry_attempts       = var.workflow_retry_attempts
}
