# =============================================================================
# Usage plans: one per tier of src/shared/tiers.json (tenants join them at runtime)
# =============================================================================

locals {
  # The provisioner puts each tenant's metering key in its tier's plan at
  # runtime, finding the plan by its name <prefix>-<tier>
  # (src/provisioner/resources.py); the local stack's plans read the same file
  # (proving-ground/local/services/apigateway.py). Each key has a token bucket
  # and a daily count of its own within its plan, so one tenant's flood never
  # throttles another.
  tier_usage_plans = {
    for name, tier in local.tiers : name => {
      rate_limit  = tier.rateLimit
      burst_limit = tier.burstLimit
      daily_quota = tier.dailyQuota
    }
  }
  # The stage's default method throttle is shared by every tenant on a method.
  # With tenants added at runtime, the control plane keeps the sum of the
  # tenants' rates and bursts within it (409 "capacity: ..."; the
  # STAGE_THROTTLE_* settings of the control function); here the stage must at
  # least hold one tenant of the largest tier.
  largest_tier_rate  = max([for tier in values(local.tier_usage_plans) : tier.rate_limit]...)
  largest_tier_burst = max([for tier in values(local.tier_usage_plans) : tier.burst_limit]...)

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

resource "aws_api_gateway_usage_plan" "tier" {
  for_each = local.tier_usage_plans

  name        = "${local.name_prefix}-${each.key}"
  description = "Usage plan of the ${each.key} tier (src/shared/tiers.json); the provisioner adds each tenant's metering key."

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
      condition     = var.throttling_rate_limit >= local.largest_tier_rate && var.throttling_burst_limit >= local.largest_tier_burst
      error_message = "throttling_rate_limit (${var.throttling_rate_limit}) and throttling_burst_limit (${var.throttling_burst_limit}) must hold at least one tenant of the largest tier (${local.largest_tier_rate} and ${local.largest_tier_burst}, src/shared/tiers.json); the control plane keeps the sum of all tenants' tiers within them."
    }
  }
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
