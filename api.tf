# =============================================================================
# REST API: resources, authorizer, validators, model, gateway responses
# =============================================================================

resource "aws_api_gateway_rest_api" "this" {
  name        = "${local.name_prefix}-api"
  description = "Tenant-isolated durable callback workflow (routes from src/shared/api_contract.json)."
  # The request authorizer returns the tenant's verified API key as
  # usageIdentifierKey; API Gateway throttles and meters the request with that
  # key's usage plan (operations.tf).
  api_key_source = "AUTHORIZER"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    # A replacement API is built before the old one goes, so the URL outputs never dangle.
    create_before_destroy = true

    precondition {
      condition     = alltrue([for segments in values(local.route_segments) : length(segments) <= 3])
      error_message = "The API resources support paths of at most three segments; extend api.tf for deeper paths in api_contract.json."
    }
    # The admin API is AWS_IAM and its integration the control function's.
    precondition {
      condition     = alltrue([for route in values(local.routes) : (try(route.authorization, "") == "AWS_IAM") == (route.integration == "control-proxy")])
      error_message = "Exactly the control-proxy routes of api_contract.json have \"authorization\": \"AWS_IAM\"."
    }
    # Only an AWS_PROXY route can go without the authorizer: its function
    # checks the credential itself. POST /workflow starts a workflow for the
    # tenant the authorizer verified.
    precondition {
      condition     = alltrue([for route in values(local.routes) : try(route.authorizer, true) || route.integration == "api-proxy"])
      error_message = "Only api-proxy routes may set \"authorizer\": false in api_contract.json."
    }
  }
}

resource "aws_api_gateway_resource" "level1" {
  for_each = local.level1_paths

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = trimprefix(each.key, "/")
}

resource "aws_api_gateway_resource" "level2" {
  for_each = local.level2_paths

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.level1["/${split("/", trimprefix(each.key, "/"))[0]}"].id
  path_part   = split("/", trimprefix(each.key, "/"))[1]
}

resource "aws_api_gateway_resource" "level3" {
  for_each = local.level3_paths

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.level2[join("/", slice(split("/", each.key), 0, 3))].id
  path_part   = split("/", trimprefix(each.key, "/"))[2]
}

locals {
  resource_ids = merge(
    { for path, resource in aws_api_gateway_resource.level1 : path => resource.id },
    { for path, resource in aws_api_gateway_resource.level2 : path => resource.id },
    { for path, resource in aws_api_gateway_resource.level3 : path => resource.id },
  )
}

# Never cached (TTL 0): the authorizer's context carries the workflow id, minted
# per request (or per Idempotency-Key), which a cached answer would repeat.
# Without both headers API Gateway answers 401 without invoking the function.
resource "aws_api_gateway_authorizer" "tenant" {
  name                             = "${local.name_prefix}-tenant-key"
  rest_api_id                      = aws_api_gateway_rest_api.this.id
  type                             = "REQUEST"
  authorizer_uri                   = aws_lambda_function.function["authorizer"].invoke_arn
  identity_source                  = "method.request.header.${local.tenant_header},method.request.header.${local.api_key_header}"
  authorizer_result_ttl_in_seconds = 0
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "AllowApiGatewayAuthorizer"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["authorizer"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/authorizers/${aws_api_gateway_authorizer.tenant.id}"
}

resource "aws_api_gateway_request_validator" "body_and_params" {
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  name                        = "body-and-params"
  validate_request_body       = true
  validate_request_parameters = true
}

resource "aws_api_gateway_request_validator" "params_only" {
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  name                        = "params-only"
  validate_request_body       = false
  validate_request_parameters = true
}

resource "aws_api_gateway_model" "start_workflow_request" {
  rest_api_id  = aws_api_gateway_rest_api.this.id
  name         = "StartWorkflowRequest"
  description  = "Body of POST ${local.start_route.path} (src/shared/${local.start_route.requestSchema})."
  content_type = "application/json"
  schema       = local.start_request_schema
}

# Every error API Gateway itself produces is JSON {"message": ...}, like the
# errors of the functions. Types, statuses, headers and the template are read
# from src/shared/api_gateway/, the files the local gateway renders too (with
# a Velocity engine), so both answer alike; each type's reason is in the file.
locals {
  api_gateway_dir           = "${local.shared_dir}/api_gateway"
  gateway_response_config   = jsondecode(file("${local.api_gateway_dir}/gateway_responses.json"))
  gateway_responses         = local.gateway_response_config.responses
  gateway_response_template = chomp(file("${local.api_gateway_dir}/${local.gateway_response_config.template}"))
  # Cache-Control, Referrer-Policy, X-Content-Type-Options, Content-Security-Policy
  # on every gateway response: the token route's own 404 and 429 carry the
  # headers of the approval page (gateway responses are per API, not per route;
  # on the JSON answers of the other routes they are harmless).
  gateway_security_headers = {
    for name, value in local.gateway_response_config.securityHeaders.headers : "gatewayresponse.header.${name}" => "'${value}'"
  }
}

resource "aws_api_gateway_gateway_response" "json" {
  for_each = local.gateway_responses

  rest_api_id   = aws_api_gateway_rest_api.this.id
  response_type = each.key
  status_code   = each.value.statusCode
  response_parameters = merge(local.gateway_security_headers, {
    for name, value in try(each.value.headers, {}) : "gatewayresponse.header.${name}" => value
  })

  # A type may name a template of its own (MISSING_AUTHENTICATION_TOKEN: a
  # fixed {"message": "Not Found"}); the others share gateway_response.vtl.
  response_templates = {
    "application/json" = try(chomp(file("${local.api_gateway_dir}/${each.value.template}")), local.gateway_response_template)
  }
}

# =============================================================================
# POST /workflow: validated, authorized, then an async Invoke of workflow:live
# =============================================================================

# Request parameters (the Lambda Invoke headers: the verified tenant, 'Event',
# the execution name), templates and integration responses are read from
# src/shared/api_gateway/start_workflow_integration.json and the .vtl files it
# names; the local gateway applies the same files.
locals {
  start_integration = jsondecode(file("${local.api_gateway_dir}/start_workflow_integration.json"))
  start_request_templates = {
    for content_type, name in local.start_integration.requestTemplates : content_type => chomp(file("${local.api_gateway_dir}/${name}"))
  }
  start_response_templates = {
    for key, response in local.start_integration.responses : key => {
      for content_type, name in response.templates : content_type => chomp(file("${local.api_gateway_dir}/${name}"))
    }
  }
}

resource "aws_api_gateway_method" "start_workflow" {
  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = local.resource_ids[local.start_route.path]
  http_method          = local.start_route.method
  authorization        = "CUSTOM"
  authorizer_id        = aws_api_gateway_authorizer.tenant.id
  api_key_required     = true # the key comes from the authorizer: the tenant's usage plan applies
  request_validator_id = aws_api_gateway_request_validator.body_and_params.id

  request_models = {
    "application/json" = aws_api_gateway_model.start_workflow_request.name
  }

  request_parameters = {
    "method.request.header.${local.tenant_header}" = true
  }
}

resource "aws_api_gateway_integration" "start_workflow" {
  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = aws_api_gateway_method.start_workflow.resource_id
  http_method             = aws_api_gateway_method.start_workflow.http_method
  type                    = "AWS"
  integration_http_method = "POST"
  # arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ALIAS_ARN/invocations
  uri                  = aws_lambda_alias.workflow_live.invoke_arn
  passthrough_behavior = "NEVER"

  request_parameters = local.start_integration.requestParameters
  request_templates  = local.start_request_templates
}

resource "aws_api_gateway_method_response" "start_workflow" {
  for_each = toset([for response in values(local.start_integration.responses) : response.statusCode])

  rest_api_id = aws_api_gateway_rest_api.this.id
  resource_id = aws_api_gateway_method.start_workflow.resource_id
  http_method = aws_api_gateway_method.start_workflow.http_method
  status_code = each.key
}

# "accepted" (202 with the workflow id) and "failed" (a function error must never
# pass as 202); each response's "why" in start_workflow_integration.json says
# more. Invoke-level refusals never reach these mappings: see the gateway responses.
resource "aws_api_gateway_integration_response" "start_workflow" {
  for_each = local.start_integration.responses

  rest_api_id       = aws_api_gateway_rest_api.this.id
  resource_id       = aws_api_gateway_method.start_workflow.resource_id
  http_method       = aws_api_gateway_method.start_workflow.http_method
  status_code       = aws_api_gateway_method_response.start_workflow[each.value.statusCode].status_code
  selection_pattern = each.value.selectionPattern

  response_templates = local.start_response_templates[each.key]

  depends_on = [aws_api_gateway_integration.start_workflow]
}

# API Gateway may invoke the alias, and only the alias, for this one route.
resource "aws_lambda_permission" "start_workflow" {
  statement_id  = "AllowApiGatewayStartWorkflow"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["workflow"].function_name
  qualifier     = aws_lambda_alias.workflow_live.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/${local.start_route.method}${local.start_route.path}"
}

# =============================================================================
# Proxy routes: status and callbacks, AWS_PROXY to the API function
# =============================================================================

# GET /workflow/{workflowId}, POST /callback and POST /callbacks/{callbackToken}.

locals {
  # Every proxy and admin route's path parameters, as the required request
  # parameters of its method.
  method_path_parameters = {
    for key, names in local.route_path_params : key => { for name in names : "method.request.path.${name}" => true }
  }
}

resource "aws_api_gateway_method" "proxy" {
  for_each = local.authorized_proxy_routes

  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = local.resource_ids[each.value.path]
  http_method          = each.value.method
  authorization        = "CUSTOM"
  authorizer_id        = aws_api_gateway_authorizer.tenant.id
  api_key_required     = true # the key comes from the authorizer: the tenant's usage plan applies
  request_validator_id = aws_api_gateway_request_validator.params_only.id

  request_parameters = merge({ "method.request.header.${local.tenant_header}" = true }, local.method_path_parameters[each.key])
}

# The routes without the authorizer ("authorizer": false in the contract), in a
# resource of their own so that checkov's check for open methods is skipped
# here only and still reads every authorized method.
resource "aws_api_gateway_method" "public_proxy" {
  #checkov:skip=CKV_AWS_59:POST /callbacks/{callbackToken} is open by design: the single-use token in the path (HMAC-SHA256 under the Secrets Manager key, 256 bits) is the credential, resolved by the api function against its stored hash; unknown, malformed or revoked tokens get 404 (a used one 409, one past its deadline 410), answers an API Gateway authorizer (401/403 only) could not give. The token grants one answer to one callback, nothing else; it has no tenant key, so no usage plan: method settings of its own throttle it (aws_api_gateway_method_settings.public_routes).
  for_each = local.public_proxy_routes

  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = local.resource_ids[each.value.path]
  http_method          = each.value.method
  authorization        = "NONE"
  api_key_required     = false
  request_validator_id = aws_api_gateway_request_validator.params_only.id

  # No tenant header: whatever headers the caller sends are ignored.
  request_parameters = local.method_path_parameters[each.key]
}

# =============================================================================
# The admin API: /tenants routes, AWS_IAM, AWS_PROXY to the control function
# =============================================================================

# Only principals allowed execute-api:Invoke on these methods may call them
# (SigV4, service execute-api); tenant API keys never can: the request
# authorizer is not on these routes, and an unsigned request is refused as
# MISSING_AUTHENTICATION_TOKEN (404 {"message": "Not Found"}) before any
# function runs. No usage plan meters them (no API key): the stage's default
# method throttle applies.
resource "aws_api_gateway_method" "control" {
  for_each = local.control_routes

  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = local.resource_ids[each.value.path]
  http_method          = each.value.method
  authorization        = "AWS_IAM"
  api_key_required     = false
  request_validator_id = aws_api_gateway_request_validator.params_only.id
  request_parameters   = local.method_path_parameters[each.key]
}

# =============================================================================
# Every AWS_PROXY route's integration and invoke permission, to its function
# =============================================================================

locals {
  # The function behind each proxy integration kind of the contract.
  proxy_functions = { "api-proxy" = "api", "control-proxy" = "control" }
  proxy_methods   = merge(aws_api_gateway_method.proxy, aws_api_gateway_method.public_proxy, aws_api_gateway_method.control)
  lambda_proxy_routes = {
    for key, route in merge(local.proxy_routes, local.control_routes) : key => merge(route, { function = local.proxy_functions[route.integration] })
  }
}

resource "aws_api_gateway_integration" "proxy" {
  for_each = local.lambda_proxy_routes

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = local.proxy_methods[each.key].resource_id
  http_method             = local.proxy_methods[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = aws_lambda_function.function[each.value.function].invoke_arn
}

resource "aws_lambda_permission" "proxy" {
  for_each = local.lambda_proxy_routes

  statement_id  = "AllowApiGateway-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.value.function].function_name
  principal     = "apigateway.amazonaws.com"
  # Path parameters become "*": arn:...:API_ID/STAGE/GET/workflow/*,
  # .../POST/callbacks/* (the token route), .../PATCH/tenants/*.
  source_arn = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/${each.value.method}${replace(each.value.path, "/{[^}]+}/", "*")}"
}
