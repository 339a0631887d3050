# =============================================================================
# Deployment and stage: access logs, execution logs, throttling
# =============================================================================

# The Region-wide setting that lets API Gateway write to CloudWatch Logs;
# stage logging fails without it.
resource "aws_iam_role" "api_gateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  name        = "${local.name_prefix}-apigw-cloudwatch"
  description = "Lets API Gateway write the access and execution logs of REST API stages."
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "apigateway.amazonaws.com" }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "api_gateway_cloudwatch" {
  count = var.manage_api_gateway_account ? 1 : 0

  role       = aws_iam_role.api_gateway_cloudwatch[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.manage_api_gateway_account ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_cloudwatch[0].arn

  depends_on = [aws_iam_role_policy_attachment.api_gateway_cloudwatch]
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  description = "Routes from src/shared/api_contract.json"

  lifecycle {
    create_before_destroy = true
    # A new deployment whenever a part of the API it snapshots is created,
    # changed or replaced. Derived from the resources' planned changes, not
    # from their values: a refresh that only normalises read-back attributes
    # (null -> [], JSON whitespace) is no change. A test checks that every
    # aws_api_gateway_* resource the deployment takes in is named here.
    replace_triggered_by = [
      aws_api_gateway_resource.level1,
      aws_api_gateway_resource.level2,
      aws_api_gateway_resource.level3,
      aws_api_gateway_authorizer.tenant,
      aws_api_gateway_request_validator.body_and_params,
      aws_api_gateway_request_validator.params_only,
      aws_api_gateway_model.start_workflow_request,
      aws_api_gateway_gateway_response.json,
      aws_api_gateway_method.start_workflow,
      aws_api_gateway_integration.start_workflow,
      aws_api_gateway_method_response.start_workflow,
      aws_api_gateway_integration_response.start_workflow,
      aws_api_gateway_method.proxy,
      aws_api_gateway_method.public_proxy,
      aws_api_gateway_integration.proxy,
      aws_api_gateway_method.control,
    ]
  }
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:Responses are per request (a fresh workflow id, a live status); a cache would serve stale answers, and keyed wrongly another tenant's.
  #checkov:skip=CKV2_AWS_29:A WAF web ACL costs a monthly fee per ACL and rule; the stage throttles requests (method settings) and a production deployment attaches its organisation's ACL.
  #checkov:skip=CKV_AWS_73:Stage tracing is off on purpose: an X-Ray segment of API Gateway records the full request URL, and on POST /callbacks/{callbackToken} the path is the callback token, a credential never to be logged. The three functions trace with X-Ray (mode Active), the access log names the resource template ($context.resourcePath), never the path.
  #checkov:skip=CKV2_AWS_51:Client certificates authenticate API Gateway to HTTP backends; every backend here is a Lambda function.
  rest_api_id   = aws_api_gateway_rest_api.this.id
  deployment_id = aws_api_gateway_deployment.this.id
  stage_name    = var.stage_name
  description   = "Stage ${var.stage_name} of the tenant-isolated durable workflow API."
  # No X-Ray on the stage: its segments record the full request URL, which on
  # POST /callbacks/{callbackToken} is the token, a credential that is never
  # logged. The functions keep Active tracing (aws_lambda_function.function).
  xray_tracing_enabled = false

  # The request path is never logged: on POST /callbacks/{callbackToken} it
  # holds the token, a credential. So the format has $context.resourcePath
  # (the template, "/callbacks/{callbackToken}"), never $context.path, and the
  # method settings below keep data_trace_enabled (full request logs) off.
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.this["api_access"].arn
    format = jsonencode({
      requestId          = "$context.requestId"
      extendedRequestId  = "$context.extendedRequestId"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      resourcePath       = "$context.resourcePath"
      status             = "$context.status"
      responseLength     = "$context.responseLength"
      tenantId           = "$context.authorizer.tenantId"
      workflowId         = "$context.authorizer.workflowId"
      authorizerStatus   = "$context.authorizer.status"
      sourceIp           = "$context.identity.sourceIp"
      userAgent          = "$context.identity.userAgent"
      errorMessage       = "$context.error.message"
      errorResponseType  = "$context.error.responseType"
      integrationStatus  = "$context.integration.status"
      integrationError   = "$context.integration.error"
      integrationLatency = "$context.integration.latency"
    })
  }

  depends_on = [
    aws_api_gateway_account.this,
    aws_cloudwatch_log_group.this["api_execution"],
  ]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Responses are per request (a fresh workflow id, a live status); a cache would serve stale answers, and keyed wrongly another tenant's.
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    throttling_rate_limit  = var.throttling_rate_limit
    throttling_burst_limit = var.throttling_burst_limit
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false
    caching_enabled        = false
    cache_data_encrypted   = true
  }
}
