# Tenant-isolated durable callback workflow.
#
#   client -> REST API -> request authorizer (x-api-key must belong to x-tenant-id)
#          -> (AWS integration, async) workflow:live   durable, PER_TENANT
#          -> (AWS_PROXY)              api function    status + callbacks
#   external system -> POST /callbacks/{callbackToken} (no authorizer: the
#          token is the credential) -> (AWS_PROXY) api function
#   workflow (waiting) -> EventBridge bus -> a rule per tenant -> its SQS queue
#   producer -> a tenant's start queue -> (event source mapping) router
#          -> (async) workflow:live, the tenant taken from the queue
#   operator (SigV4, AWS_IAM) -> /tenants -> (AWS_PROXY) control function
#          -> (async) provisioner:live  durable: each tenant's metering key in
#             its tier's usage plan, its queue and rule, created and deleted at
#             runtime (Terraform holds no per-tenant resource)
#
# The deployment packages come from `make build` (build/<function>.zip for
# each function of src/functions.json). The functions are defined in
# src/functions.json; the routes, the tenant header, the request schema and
# the demo tenants are read from src/shared/, the files the handlers, the local
# stack and the tests read too, so there is one source of truth for each.
#
# One file per concern: main.tf (provider, shared locals, the functions and
# their log groups), dynamodb.tf (tables), notifications.tf (signing key,
# event bus; the tenants' queues and rules are the provisioner's), iam.tf (execution
# roles), api.tf (REST API and routes), api_stage.tf (deployment, stage,
# logging), operations.tf (usage plans, dead-letter queue), monitoring.tf
# (alarms, dashboard), router.tf (the queue entry: router, its dead-letter
# queue, the provisioner's start-queue permissions), variables.tf, outputs.tf.

# =============================================================================
# Terraform and provider
# =============================================================================

terraform {
  # 1.11: the callback signing key is written through a write-only attribute
  # from an ephemeral resource (1.10), so it is in neither the plan nor the state.
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # tenancy_config arrived in 6.23, durable_config in 6.25; a new major
      # version may change them, so it is a deliberate upgrade.
      version = ">= 6.25.0, < 7.0.0"
    }
  }
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(
      {
        Project   = "tenant-durable-callback-workflow"
        ManagedBy = "terraform"
      },
      var.tags,
    )
  }
}

data "aws_partition" "current" {}

# =============================================================================
# Shared data: API contract, request schema, demo tenants, names
# =============================================================================

locals {
  name_prefix = var.name_prefix
  shared_dir  = "${path.module}/src/shared"

  contract      = jsondecode(file("${local.shared_dir}/api_contract.json"))
  routes        = local.contract.routes
  tenant_header = local.contract.tenantHeader
  # The header the request authorizer reads the tenant's key from
  # (API_KEY_HEADER in src/shared/identity.py; a test keeps the two equal).
  api_key_header = local.contract.apiKeyHeader
  start_route    = local.routes.startWorkflow
  proxy_routes   = { for key, route in local.routes : key => route if route.integration == "api-proxy" }
  # "authorizer": false in the contract: POST /callbacks/{callbackToken}, whose
  # token in the path is the credential (the api function resolves it; an
  # authorizer could only answer 401/403, never the route's 404). Every other
  # route goes through the request authorizer.
  public_proxy_routes     = { for key, route in local.proxy_routes : key => route if !try(route.authorizer, true) }
  authorized_proxy_routes = { for key, route in local.proxy_routes : key => route if try(route.authorizer, true) }

  start_request_schema = file("${local.shared_dir}/${local.start_route.requestSchema}")

  # Tenants are created at runtime through the admin API (src/control), never by
  # Terraform: no per-tenant resource is in any plan. demo_tenants.json is seed
  # data for `make deploy` (tenantctl create-demo); only the example id of the
  # ready-to-paste curl commands is read from it: the first active one.
  demo_tenant_list  = jsondecode(file("${local.shared_dir}/demo_tenants.json"))
  example_tenant_id = [for tenant in local.demo_tenant_list : tenant.tenantId if tenant.status == "ACTIVE"][0]
  # The admin API under /tenants: AWS_IAM, AWS_PROXY to the control function.
  control_routes = { for key, route in local.routes : key => route if route.integration == "control-proxy" }
  # The service tiers: one usage plan each (operations.tf).
  tiers = jsondecode(file("${local.shared_dir}/tiers.json")).tiers

  tenants_table_name   = "${local.name_prefix}-tenants"
  workflows_table_name = "${local.name_prefix}-workflows"
  workflow_alias_name  = "live"

  # API resource tree, built from the contract's paths ("/workflow/{workflowId}"
  # -> level 1 "/workflow", level 2 "/workflow/{workflowId}").
  route_segments = { for key, route in local.routes : key => split("/", trimprefix(route.path, "/")) }
  level1_paths   = toset([for segments in values(local.route_segments) : "/${segments[0]}"])
  level2_paths   = toset([for segments in values(local.route_segments) : "/${join("/", slice(segments, 0, 2))}" if length(segments) >= 2])
  level3_paths   = toset([for segments in values(local.route_segments) : "/${join("/", segments)}" if length(segments) == 3])

  # Path parameters of each proxy route, e.g. { getWorkflow = ["workflowId"] }.
  route_path_params = { for key, route in merge(local.proxy_routes, local.control_routes) : key => flatten(regexall("{([^}]+)}", route.path)) }
}

# =============================================================================
# Functions: the workflow function, the API function and the request authorizer
# =============================================================================

locals {
  # What each function is (handler, memory, timeout, flags, environment) is
  # src/functions.json, the file the local stack builds its functions from too
  # (proving-ground/local/runtime/functions.py). Every one of them also gets its own execution role
  # (iam.tf) and log group, python3.13 on arm64, JSON logs, X-Ray tracing, and
  # the package build/<key>.zip from `make build` unless <key>_zip_path is set.
  function_definitions = jsondecode(file("${path.module}/src/functions.json"))
  function_names       = { for key in keys(local.function_definitions.functions) : key => "${local.name_prefix}-${key}" }

  # What the setting names in functions.json stand for here (the local stack
  # maps the same names from its own names and variables.tf's defaults).
  function_settings = {
    for key, name in local.function_names : key => {
      function_name               = name
      tenants_table_name          = local.tenants_table_name
      workflows_table_name        = local.workflows_table_name
      metrics_namespace           = var.metrics_namespace
      log_level                   = var.log_level
      tenant_cache_ttl_seconds    = var.tenant_cache_ttl_seconds
      callback_signing_secret_arn = aws_secretsmanager_secret.callback_signing_key.arn
      callback_base_url           = local.callback_base_url
      event_bus_name              = aws_cloudwatch_event_bus.this.name
      workflow_memory_mb          = var.workflow_memory_mb
      workflow_timeout_seconds    = var.workflow_timeout_seconds
      api_memory_mb               = var.api_memory_mb
      api_timeout_seconds         = var.api_timeout_seconds
      # The router (router.tf): the alias it starts workflows on, as "<name>:live"
      # (not the alias resource's ARN: the functions are one resource, so that
      # would be a cycle), and its dead-letter queue.
      workflow_live_function = "${local.function_names.workflow}:${local.workflow_alias_name}"
      # The control plane (src/control) and the provisioner (src/provisioner): the
      # provisioner is started on its alias "live"; the tenants' tiers must fit the
      # stage's throttle; a callback wait must end before the workflow's execution.
      name_prefix                       = local.name_prefix
      provisioner_function_name         = local.function_names.provisioner
      throttling_rate_limit             = var.throttling_rate_limit
      throttling_burst_limit            = var.throttling_burst_limit
      durable_execution_timeout_seconds = var.durable_execution_timeout_seconds
      router_dead_letter_queue_url      = aws_sqs_queue.router_dead_letter.url
      # Each tenant's start queue: six times the router's timeout (Lambda's guidance for SQS sources).
      start_queue_visibility_timeout_seconds = 6 * var.api_timeout_seconds
    }
  }

  # functions.json with every setting resolved and every flag said.
  functions = {
    for key, function in local.function_definitions.functions : key => {
      description      = function.description
      role_description = function.roleDescription
      handler          = function.handler
      memory_mb        = local.function_settings[key][function.memoryMb]
      timeout_seconds  = local.function_settings[key][function.timeoutSeconds]
      per_tenant       = try(function.perTenant, false)
      durable          = try(function.durable, false)
      publish          = try(function.publish, false)
      environment = {
        for variable, setting in merge(local.function_definitions.environment, try(function.environment, {})) :
        variable => tostring(local.function_settings[key][setting])
      }
    }
  }

  function_zip_path_variables = {
    workflow   = var.workflow_zip_path
    api        = var.api_zip_path
    authorizer = var.authorizer_zip_path
  }
  function_zip_paths = { for key in keys(local.functions) : key => coalesce(lookup(local.function_zip_path_variables, key, null), "${path.module}/build/${key}.zip") }
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_117:The functions call only public AWS APIs (DynamoDB, Lambda); a VPC would add NAT or endpoints and reach no private resource.
  #checkov:skip=CKV_AWS_115:Reserved concurrency fails on new accounts (quota 10, Lambda keeps 10 unreserved); each tenant's usage plan and the API stage throttle requests instead (demo_tenants.json, var.throttling_rate_limit).
  #checkov:skip=CKV_AWS_173:The environment holds names only (tables, event bus, the signing secret's ARN, the API URL, log settings), no secret values (key hashes live in the tenants table, the signing key in Secrets Manager); Lambda encrypts it at rest with its service key.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and signed artifacts in S3; this pattern deploys the zips `make build` writes locally.
  for_each = local.functions

  function_name    = local.function_names[each.key]
  description      = each.value.description
  role             = aws_iam_role.function[each.key].arn
  handler          = each.value.handler
  runtime          = "python3.13"
  architectures    = ["arm64"]
  filename         = local.function_zip_paths[each.key]
  source_code_hash = fileexists(local.function_zip_paths[each.key]) ? filebase64sha256(local.function_zip_paths[each.key]) : null
  memory_size      = each.value.memory_mb
  timeout          = each.value.timeout_seconds
  publish          = each.value.publish

  dynamic "durable_config" {
    for_each = each.value.durable ? [1] : []
    content {
      execution_timeout = var.durable_execution_timeout_seconds
      retention_period  = var.durable_retention_days
    }
  }

  # An execution environment serves one tenant only (X-Amz-Tenant-Id).
  dynamic "tenancy_config" {
    for_each = each.value.per_tenant ? [1] : []
    content {
      tenant_isolation_mode = "PER_TENANT"
    }
  }

  environment {
    variables = each.value.environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this[each.key].name
  }

  tracing_config {
    mode = "Active"
  }

  # Asynchronous invocations Lambda gives up on (retries spent, or older than
  # the maximum event age) land here instead of being dropped. Only the
  # workflow function is invoked asynchronously (POST /workflow); API Gateway
  # invokes the other two synchronously, so nothing of theirs should arrive.
  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letter.arn
  }

  # Lambda checks at creation that the role may send to the dead-letter queue.
  depends_on = [aws_iam_role_policy.dead_letter]

  lifecycle {
    precondition {
      condition     = fileexists(local.function_zip_paths[each.key])
      error_message = "The ${each.key} package ${local.function_zip_paths[each.key]} does not exist: run `make build` first (or set ${each.key}_zip_path)."
    }
    # A callback wait must end before its execution does: the control plane
    # refuses a tenant's callbackTimeoutSeconds above this timeout minus 300 s
    # (src/control/requests.py), so no precondition on tenants is needed here.
  }
}

# The control plane starts the provisioner's executions on this alias (durable
# functions are invoked through a version or alias).
resource "aws_lambda_alias" "provisioner_live" {
  name             = local.workflow_alias_name
  description      = "The published version the control plane starts provisioning executions on."
  function_name    = aws_lambda_function.function["provisioner"].function_name
  function_version = aws_lambda_function.function["provisioner"].version
}

# API Gateway starts workflows on this alias, so durable executions run on
# the published version it points at.
resource "aws_lambda_alias" "workflow_live" {
  name             = local.workflow_alias_name
  description      = "The published version API Gateway starts workflows on."
  function_name    = aws_lambda_function.function["workflow"].function_name
  function_version = aws_lambda_function.function["workflow"].version
}

# =============================================================================
# CloudWatch log groups (created here so they have a retention)
# =============================================================================

locals {
  log_groups = merge(
    { for key, name in local.function_names : key => "/aws/lambda/${name}" },
    {
      api_access = "/aws/apigateway/${local.name_prefix}-api/${var.stage_name}/access"
      # API Gateway writes execution logs to this fixed name; creating it first
      # gives it a retention (API Gateway would create it with none).
      api_execution = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.this.id}/${var.stage_name}"
    },
  )
}

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts every log group at rest with a service key; a customer managed key needs a key policy for the logs service principal and a monthly key fee the demo does not need.
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (default 14 days, validated against CloudWatch's allowed values); a demo does not need a year of logs, a production deployment sets 365 or more.
  for_each = local.log_groups

  name              = each.value
  retention_in_days = var.log_retention_days
}
