# =============================================================================
# Alarms and notification: CloudWatch alarms, optional encrypted SNS topic
# =============================================================================

locals {
  # What the dashboard and alarms read: the functions' embedded metrics
  # (src/shared/observability.py: dimensions tenant_id and service, the
  # function's name), two metrics of the access log, AWS's own metrics.
  workflow_service = local.function_names["workflow"]
  api_service      = local.function_names["api"]
  api_name         = aws_api_gateway_rest_api.this.name
  # Metric filters on the JSON access log (tenantId, status, errorResponseType).
  access_log_metrics = {
    # 503s because the authorizer could not decide (the function failed or timed
    # out, the tenants table was down). Not Lambda's Errors metric of the
    # authorizer: every 401 is an "Unauthorized" error of that function.
    authorizer_failures = {
      name       = "AuthorizerFailures"
      pattern    = "{ ($.errorResponseType = \"AUTHORIZER_FAILURE\") || ($.errorResponseType = \"AUTHORIZER_CONFIGURATION_ERROR\") }"
      dimensions = null
    }
    # 429s, by tenant: a tenant over its usage plan ("-" on the token route).
    throttled_requests = {
      name       = "ThrottledRequests"
      pattern    = "{ $.status = \"429\" }"
      dimensions = { tenantId = "$.tenantId" }
    }
  }
  # Alarms on a Metrics Insights query: one alarm sums a metric over every
  # tenant, present and future; an alarm cannot use SEARCH, and
  # a tenant onboarded later needs no alarm of its own. Threshold: more than.
  query_alarms = {
    workflows-failed = {
      description = "Workflows that ended FAILED, any tenant (WorkflowFailed; per tenant on the dashboard)."
      expression  = "SELECT SUM(WorkflowFailed) FROM SCHEMA(\"${var.metrics_namespace}\", service, tenant_id) WHERE service = '${local.workflow_service}'"
      threshold   = 0
    }
    workflows-timed-out = {
      description = "Workflows whose callback never came (TIMED_OUT), any tenant (WorkflowTimedOut; per tenant on the dashboard)."
      expression  = "SELECT SUM(WorkflowTimedOut) FROM SCHEMA(\"${var.metrics_namespace}\", service, tenant_id) WHERE service = '${local.workflow_service}'"
      threshold   = 0
    }
    # A tenant that keeps hitting its plan; a burst now and then is the plan
    # doing its job.
    api-throttled = {
      description = "429s of stage ${var.stage_name}, all tenants (ThrottledRequests from the access log; per tenant on the dashboard)."
      expression  = "SELECT SUM(${local.access_log_metrics.throttled_requests.name}) FROM SCHEMA(\"${var.metrics_namespace}\", tenantId)"
      threshold   = var.throttled_requests_alarm_threshold
    }
  }
  # Alarms on one metric. Threshold: more than 0.
  metric_alarms = {
    workflow-dlq-not-empty = {
      description = "Workflow start events Lambda gave up on wait in ${aws_sqs_queue.dead_letter.name}: inspect and redrive them (README)."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = aws_sqs_queue.dead_letter.name }
      statistic   = "Maximum"
    }
    authorizer-failures = {
      description = "Requests answered 503 because the request authorizer could not decide (AUTHORIZER_FAILURE / AUTHORIZER_CONFIGURATION_ERROR in the access log)."
      namespace   = var.metrics_namespace
      metric      = local.access_log_metrics.authorizer_failures.name
      dimensions  = {}
      statistic   = "Sum"
    }
    api-5xx = {
      description = "5xx answers of stage ${var.stage_name} (502 start refused, 503 authorizer, 500 integration)."
      namespace   = "AWS/ApiGateway"
      metric      = "5XXError"
      dimensions  = { ApiName = local.api_name, Stage = var.stage_name }
      statistic   = "Sum"
    }
  }
  alarm_actions = aws_sns_topic.alarms[*].arn
}

resource "aws_cloudwatch_log_metric_filter" "access_log" {
  for_each = local.access_log_metrics

  name           = "${local.name_prefix}-${replace(each.key, "_", "-")}"
  log_group_name = aws_cloudwatch_log_group.this["api_access"].name
  pattern        = each.value.pattern

  metric_transformation {
    name       = each.value.name
    namespace  = var.metrics_namespace
    value      = "1"
    unit       = "Count"
    dimensions = each.value.dimensions
  }
}

resource "aws_cloudwatch_metric_alarm" "query" {
  for_each = local.query_alarms

  alarm_name          = "${local.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "q"
    label       = each.key
    return_data = true
    period      = 300
    expression  = each.value.expression
  }

  depends_on = [aws_cloudwatch_log_metric_filter.access_log]
}

# Invocations Lambda throttled (concurrency spent), any of the three functions:
# metric math over each function's Throttles (a Metrics Insights WHERE takes
# AND only, so it cannot name the three functions).
resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  alarm_name          = "${local.name_prefix}-lambda-throttles"
  alarm_description   = "Invocations Lambda throttled (concurrency spent), any of the three functions."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "throttles"
    label       = "Throttles, all functions"
    expression  = join(" + ", [for key in sort(keys(local.functions)) : "FILL(${key}, 0)"])
    return_data = true
  }

  dynamic "metric_query" {
    for_each = sort(keys(local.functions))
    content {
      id = metric_query.value
      metric {
        namespace   = "AWS/Lambda"
        metric_name = "Throttles"
        dimensions  = { FunctionName = local.function_names[metric_query.value] }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.metric_alarms

  alarm_name          = "${local.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  depends_on = [aws_cloudwatch_log_metric_filter.access_log]
}

# Optional: where the alarms notify (var.create_alarm_topic). Encrypted with a
# key of its own: CloudWatch must be allowed to use the key, which the AWS
# managed aws/sns key cannot allow.
data "aws_caller_identity" "alarms" {
  count = var.create_alarm_topic ? 1 : 0
}

resource "aws_kms_key" "alarms" {
  count = var.create_alarm_topic ? 1 : 0

  description         = "Encrypts the ${local.name_prefix} alarm topic; CloudWatch may use it to publish."
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersTheKey"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.alarms[0].account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchPublishesAlarms"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.alarms[0].account_id } }
      },
    ]
  })
}

resource "aws_sns_topic" "alarms" {
  count = var.create_alarm_topic ? 1 : 0

  name              = "${local.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.alarms[0].arn
}

data "aws_iam_policy_document" "alarm_topic" {
  count = var.create_alarm_topic ? 1 : 0

  statement {
    sid       = "CloudWatchAlarmsOfThisAccount"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms[0].arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.alarms[0].account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  count = var.create_alarm_topic ? 1 : 0

  arn    = aws_sns_topic.alarms[0].arn
  policy = data.aws_iam_policy_document.alarm_topic[0].json
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each = toset(var.create_alarm_topic ? var.alarm_emails : [])

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

# =============================================================================
# Dashboard: per-tenant workflow outcomes and throttling, API, functions, DLQ
# =============================================================================

locals {
  dashboard_name = "${local.name_prefix}-workflows"
  # One graph per metric, a line per tenant: SEARCH finds every tenant_id.
  dashboard_tenant_metrics = [
    { title = "Workflows accepted, per tenant", metric = "WorkflowAccepted", service = local.workflow_service },
    { title = "Workflows completed, per tenant", metric = "WorkflowCompleted", service = local.workflow_service },
    { title = "Workflows rejected by tenant policy, per tenant", metric = "WorkflowRejected", service = local.workflow_service },
    { title = "Workflows FAILED, per tenant", metric = "WorkflowFailed", service = local.workflow_service },
    { title = "Workflows TIMED_OUT, per tenant", metric = "WorkflowTimedOut", service = local.workflow_service },
    { title = "Callbacks delivered, per tenant", metric = "CallbackDelivered", service = local.api_service },
  ]
  # Every graph of the dashboard: a title, a statistic and its metrics (a
  # SEARCH that finds every tenant, or metric rows), laid out 3 to a row.
  dashboard_graphs = concat(
    [for graph in local.dashboard_tenant_metrics : {
      title   = graph.title
      stat    = "Sum"
      metrics = [[{ expression = "SEARCH('{${var.metrics_namespace},service,tenant_id} MetricName=\"${graph.metric}\" service=\"${graph.service}\"', 'Sum', 300)", id = "tenants", label = "" }]]
    }],
    [
      {
        title   = "429 Too Many Requests, per tenant (usage plans)"
        stat    = "Sum"
        metrics = [[{ expression = "SEARCH('{${var.metrics_namespace},tenantId} MetricName=\"${local.access_log_metrics.throttled_requests.name}\"', 'Sum', 300)", id = "throttled", label = "" }]]
      },
      {
        title   = "API ${var.stage_name}: requests, 4xx, 5xx"
        stat    = "Sum"
        metrics = [for metric in ["Count", "4XXError", "5XXError"] : ["AWS/ApiGateway", metric, "ApiName", local.api_name, "Stage", var.stage_name]]
      },
      {
        title   = "Workflow dead-letter queue: messages waiting"
        stat    = "Maximum"
        metrics = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dead_letter.name]]
      },
      {
        title   = "Functions: errors and throttles"
        stat    = "Sum"
        metrics = flatten([for key in sort(keys(local.functions)) : [for metric in ["Errors", "Throttles"] : ["AWS/Lambda", metric, "FunctionName", local.function_names[key]]]])
      },
    ],
  )
  dashboard_rows = ceil(length(local.dashboard_graphs) / 3)
  dashboard_widgets = concat(
    [for index, graph in local.dashboard_graphs : {
      type       = "metric"
      x          = (index % 3) * 8
      y          = floor(index / 3) * 6
      width      = 8
      height     = 6
      properties = merge(graph, { region = var.aws_region, view = "timeSeries", period = 300 })
    }],
    # The alarms' states, on a row of their own below the graphs.
    [{
      type       = "alarm"
      x          = 0
      y          = local.dashboard_rows * 6
      width      = 24
      height     = 4
      properties = { title = "Alarms", alarms = local.alarm_arns }
    }],
  )
  alarm_arns = concat(
    [for alarm in aws_cloudwatch_metric_alarm.query : alarm.arn],
    [for alarm in aws_cloudwatch_metric_alarm.metric : alarm.arn],
    [aws_cloudwatch_metric_alarm.lambda_throttles.arn],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.dashboard_name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
