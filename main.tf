# Tenant-isolated durable callback workflow.
#
#   client -> REST API -> request authorizer (x-api-key must belong to x-tenant-id)
#          -> (AWS integration, async) workflow:live   durable, PER_TENANT
#          -> (AWS_PROXY)              api function    status + callbacks
#   external system -> POST /callbacks/{callbackToken} (no authorizer: the
#          token is the credential) -> (AWS_PROXY) api function
#   workflow (waiting) -> EventBridge bus -> a rule per tenant -> its SQS queue
#
# The deployment packages come from `make build` (build/workflow.zip,
# build/api.zip, build/authorizer.zip). The routes, the tenant header, the request schema and the
# demo tenants are read from src/shared/, the files the handlers and the tests
# read too, so there is one source of truth for each.

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

  demo_tenant_list = jsondecode(file("${local.shared_dir}/demo_tenants.json"))
  demo_tenants     = { for tenant in local.demo_tenant_list : tenant.tenantId => tenant }
  # The tenants Terraform seeds and gives an API key (a set of ids, so tenants
  # may differ in their fields).
  seeded_tenant_ids = toset(var.create_demo_tenants ? keys(local.demo_tenants) : [])
  # The tenant the ready-to-paste curl commands use: the first active one.
  example_tenant_id = [for tenant in local.demo_tenant_list : tenant.tenantId if tenant.status == "ACTIVE"][0]

  tenants_table_name   = "${local.name_prefix}-tenants"
  workflows_table_name = "${local.name_prefix}-workflows"
  workflow_alias_name  = "live"

  # API resource tree, built from the contract's paths ("/workflow/{workflowId}"
  # -> level 1 "/workflow", level 2 "/workflow/{workflowId}").
  route_segments = { for key, route in local.routes : key => split("/", trimprefix(route.path, "/")) }
  level1_paths   = toset([for segments in values(local.route_segments) : "/${segments[0]}"])
  level2_paths   = toset([for segments in values(local.route_segments) : "/${join("/", segments)}" if length(segments) == 2])

  # Path parameters of each proxy route, e.g. { getWorkflow = ["workflowId"] }.
  route_path_params = { for key, route in local.proxy_routes : key => flatten(regexall("{([^}]+)}", route.path)) }
}

# =============================================================================
# DynamoDB: tenants table (seeded with the demo tenants) and workflow registry
# =============================================================================

resource "aws_dynamodb_table" "tenants" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key by default; set var.dynamodb_kms_key_arn to use a customer managed key (it costs a monthly key fee the demo does not need).
  name         = local.tenants_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "tenantId"

  attribute {
    name = "tenantId"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.dynamodb_kms_key_arn
  }
}

locals {
  # Every field of every demo tenant as a DynamoDB attribute, typed the way
  # src/shared/tenants.py writes them (tenant_item) and reads them back
  # (TenantConfig.from_item): strings S, numbers N, booleans BOOL, lists of
  # strings L. A JSON value's type shows in its encoding's first character.
  demo_tenant_items = {
    for tenant_id, tenant in local.demo_tenants : tenant_id => {
      for field, value in tenant : field => jsondecode(
        startswith(jsonencode(value), "\"") ? jsonencode({ S = value }) :
        startswith(jsonencode(value), "[") ? jsonencode({ L = [for element in value : { S = element }] }) :
        contains(["true", "false"], jsonencode(value)) ? jsonencode({ BOOL = value }) :
        jsonencode({ N = jsonencode(value) })
      )
    }
  }
  # Fields no type above fits (an object, null, a list of anything but
  # strings), which the precondition below refuses.
  demo_tenant_unsupported_fields = flatten([
    for tenant_id, tenant in local.demo_tenants : [
      for field, value in tenant : "${tenant_id}.${field}"
      if !can(regex("^(\"|-?[0-9]|true$|false$)", jsonencode(value))) && !try(startswith(jsonencode(value), "[") && alltrue([for element in value : startswith(jsonencode(element), "\"")]), false)
    ]
  ])
}

resource "aws_dynamodb_table_item" "demo_tenant" {
  for_each = local.seeded_tenant_ids

  table_name = aws_dynamodb_table.tenants.name
  hash_key   = aws_dynamodb_table.tenants.hash_key

  item = jsonencode(merge(local.demo_tenant_items[each.key], {
    # The authorizer compares the SHA-256 of the presented key with this.
    apiKeyHash = { S = sha256(aws_api_gateway_api_key.demo[each.key].value) }
  }))

  lifecycle {
    precondition {
      condition     = length(local.demo_tenant_unsupported_fields) == 0
      error_message = "Demo tenant fields must be strings, numbers, booleans or lists of strings (src/shared/demo_tenants.json): ${join(", ", local.demo_tenant_unsupported_fields)}."
    }
  }
}

# One API key per demo tenant. API Gateway generates the secret (no random
# provider needed); the keys belong to no usage plan: the request authorizer is
# what checks them, against the hash stored on the tenant's item.
resource "aws_api_gateway_api_key" "demo" {
  for_each = local.seeded_tenant_ids

  name        = "${local.name_prefix}-${each.key}"
  description = "Demo API key of tenant ${each.key} (checked by the request authorizer)."
  enabled     = true
}

# Items: "workflow#<workflowId>" and "callback#<callbackId>" under each tenant,
# so one tenant's records can never be read with another tenant's key.
resource "aws_dynamodb_table" "workflows" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS managed key by default; set var.dynamodb_kms_key_arn to use a customer managed key (it costs a monthly key fee the demo does not need).
  name         = local.workflows_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "tenantId"
  range_key    = "recordId"

  attribute {
    name = "tenantId"
    type = "S"
  }

  attribute {
    name = "recordId"
    type = "S"
  }

  ttl {
    attribute_name = "expiresAt"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.dynamodb_kms_key_arn
  }
}

# =============================================================================
# Callback tokens and notification: signing key, event bus, tenant queues
# =============================================================================

# The HMAC key the callback tokens are minted with (src/shared/callback_tokens.py),
# read by the workflow and api functions. A name prefix, not a fixed name: a
# destroyed secret keeps its name through the recovery window, and a new
# deployment must not wait for it.
resource "aws_secretsmanager_secret" "callback_signing_key" {
  #checkov:skip=CKV_AWS_149:Encrypted at rest with the AWS managed key aws/secretsmanager; a customer managed key adds a key policy, kms:Decrypt for both functions and a monthly key fee the demo does not need.
  #checkov:skip=CKV2_AWS_57:Automatic rotation would need a rotation function and would invalidate every token already handed out (the tokens are HMACs under this key); rotate deliberately by raising secret_string_wo_version below, after which waiting workflows are still answerable on POST /callback with the tenant's key.
  name_prefix             = "${local.name_prefix}-callback-signing-key-"
  description             = "HMAC key of the single-use callback tokens (POST /callbacks/{callbackToken})."
  recovery_window_in_days = 7
}

# 64 random letters and digits from Secrets Manager's GetRandomPassword, with
# no random provider. An ephemeral resource, written through the write-only
# secret_string_wo: the key is in neither the plan nor the state. It is opened
# on every plan and apply, but the provider sends secret_string_wo only when
# secret_string_wo_version changes, so the key stays the same from one apply to
# the next. (The alternative, data "aws_secretsmanager_random_password" with
# ignore_changes on the version, would keep the key in the state.)
ephemeral "aws_secretsmanager_random_password" "callback_signing_key" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "callback_signing_key" {
  secret_id        = aws_secretsmanager_secret.callback_signing_key.id
  secret_string_wo = ephemeral.aws_secretsmanager_random_password.callback_signing_key.random_password
  # Raise to write a new key. Tokens handed out under the old one stop working
  # (the token route recomputes each token with the current key) once the
  # functions' cached copy expires: at most 5 minutes (SIGNING_KEY_MAX_AGE_SECONDS).
  secret_string_wo_version = 1
}

locals {
  # The stage's invoke URL, built from the API's id rather than read from the
  # stage: the stage depends on the integrations, which depend on the workflow
  # function's alias, so the functions could not read it without a cycle.
  # callbackUrl = this + "/callbacks/{callbackToken}". A test compares it with
  # the stage's invoke_url after an apply.
  callback_base_url = "https://${aws_api_gateway_rest_api.this.id}.execute-api.${var.aws_region}.${data.aws_partition.current.dns_suffix}/${var.stage_name}"

  event_bus_name         = "${local.name_prefix}-workflow-events"
  callback_waiting_event = local.contract.callbackWaitingEvent

  # Each tenant's queue of "Workflow Waiting For Callback" events is
  # NAME_PREFIX-callbacks-TENANT_ID (and so is the rule that fills it). The
  # local stack names its bus, rules and queues by the same convention
  # (local/notifications.py): keep the two alike.
  callback_queue_name_format = "${local.name_prefix}-callbacks-%s"
  callback_queue_names       = { for tenant_id in local.seeded_tenant_ids : tenant_id => format(local.callback_queue_name_format, tenant_id) }
}

# The submitter puts one event per wait here (src/workflow/notify.py).
resource "aws_cloudwatch_event_bus" "this" {
  name = local.event_bus_name
}

# One queue per demo tenant (tenants onboarded otherwise get theirs the same way).
resource "aws_sqs_queue" "callbacks" {
  for_each = local.callback_queue_names

  name                    = each.value
  sqs_managed_sse_enabled = true

  lifecycle {
    precondition {
      condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", each.value))
      error_message = "The callback queue and rule name ${each.value} must be 1-64 letters, digits, hyphens and underscores: shorten name_prefix or the tenant id."
    }
  }
}

# Only this tenant's waiting events: the source and detail-type of the
# contract's callbackWaitingEvent, and detail.tenantId.
resource "aws_cloudwatch_event_rule" "callbacks" {
  for_each = local.callback_queue_names

  name           = each.value
  description    = "${local.callback_waiting_event.detailType} events of tenant ${each.key}, to its queue."
  event_bus_name = aws_cloudwatch_event_bus.this.name
  event_pattern = jsonencode({
    source        = [local.callback_waiting_event.source]
    "detail-type" = [local.callback_waiting_event.detailType]
    detail        = { tenantId = [each.key] }
  })
}

# EventBridge may send to a tenant's queue for that tenant's rule only.
data "aws_iam_policy_document" "callback_queue" {
  for_each = local.callback_queue_names

  statement {
    sid       = "WaitingEventsOfThisTenantsRule"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.callbacks[each.key].arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.callbacks[each.key].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "callbacks" {
  for_each = local.callback_queue_names

  queue_url = aws_sqs_queue.callbacks[each.key].id
  policy    = data.aws_iam_policy_document.callback_queue[each.key].json
}

resource "aws_cloudwatch_event_target" "callbacks" {
  for_each = local.callback_queue_names

  rule           = aws_cloudwatch_event_rule.callbacks[each.key].name
  event_bus_name = aws_cloudwatch_event_bus.this.name
  target_id      = "tenant-queue"
  arn            = aws_sqs_queue.callbacks[each.key].arn

  # Events are delivered only once the queue lets EventBridge in.
  depends_on = [aws_sqs_queue_policy.callbacks]
}

# =============================================================================
# Functions: the workflow function, the API function and the request authorizer
# =============================================================================

locals {
  # What differs between the three functions. Every one of them gets its own
  # execution role (IAM below) and log group, python3.13 on arm64, JSON logs,
  # X-Ray tracing, and the package build/<key>.zip from `make build` unless
  # zip_path is set. A function that does not say otherwise is neither durable
  # nor tenant-isolated nor published, and has only the common environment.
  functions = {
    # Durable (it checkpoints and waits for the callback), tenant-isolated (an
    # execution environment serves the one tenant of X-Amz-Tenant-Id) and
    # published: durable functions are invoked through a version or alias.
    workflow = {
      description      = "Durable, tenant-isolated workflow: validate, wait for the external callback, finalize."
      role_description = "Execution role of the durable workflow function."
      handler          = "workflow.app.handler"
      zip_path         = var.workflow_zip_path
      memory_mb        = var.workflow_memory_mb
      timeout_seconds  = var.workflow_timeout_seconds
      per_tenant       = true
      durable          = true
      publish          = true
      # The submitter mints the callback token and puts the waiting event.
      environment = {
        TENANT_CACHE_TTL_SECONDS     = tostring(var.tenant_cache_ttl_seconds)
        CALLBACK_SIGNING_SECRET_NAME = aws_secretsmanager_secret.callback_signing_key.arn
        CALLBACK_BASE_URL            = local.callback_base_url
        EVENT_BUS_NAME               = aws_cloudwatch_event_bus.this.name
      }
    }
    # GET /workflow/{workflowId} (with the callbackUrl while waiting),
    # POST /callback, POST /callbacks/{callbackToken}.
    api = {
      description      = "Workflow status and callback API (API Gateway AWS_PROXY)."
      role_description = "Execution role of the status and callback API function."
      handler          = "api.app.handler"
      zip_path         = var.api_zip_path
      memory_mb        = var.api_memory_mb
      timeout_seconds  = var.api_timeout_seconds
      environment = {
        CALLBACK_SIGNING_SECRET_NAME = aws_secretsmanager_secret.callback_signing_key.arn
        CALLBACK_BASE_URL            = local.callback_base_url
      }
    }
    # The x-api-key must belong to the x-tenant-id.
    authorizer = {
      description      = "REQUEST authorizer: verifies the tenant's API key and mints the workflow id."
      role_description = "Execution role of the request authorizer."
      handler          = "authorizer.app.handler"
      zip_path         = var.authorizer_zip_path
      memory_mb        = var.api_memory_mb
      timeout_seconds  = var.api_timeout_seconds
    }
  }

  function_names     = { for key in keys(local.functions) : key => "${local.name_prefix}-${key}" }
  function_zip_paths = { for key, function in local.functions : key => coalesce(function.zip_path, "${path.module}/build/${key}.zip") }
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
  publish          = try(each.value.publish, false)

  dynamic "durable_config" {
    for_each = try(each.value.durable, false) ? [1] : []
    content {
      execution_timeout = var.durable_execution_timeout_seconds
      retention_period  = var.durable_retention_days
    }
  }

  # An execution environment serves one tenant only (X-Amz-Tenant-Id).
  dynamic "tenancy_config" {
    for_each = try(each.value.per_tenant, false) ? [1] : []
    content {
      tenant_isolation_mode = "PER_TENANT"
    }
  }

  environment {
    variables = merge(try(each.value.environment, {}), {
      TENANTS_TABLE_NAME           = local.tenants_table_name
      WORKFLOWS_TABLE_NAME         = local.workflows_table_name
      POWERTOOLS_SERVICE_NAME      = local.function_names[each.key]
      POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
      POWERTOOLS_LOG_LEVEL         = var.log_level
    })
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
    # An execution that ends before its callback can time out would leave the
    # registry showing WAITING_FOR_CALLBACK.
    precondition {
      condition     = !try(each.value.durable, false) || var.durable_execution_timeout_seconds > max([for tenant in local.demo_tenant_list : tenant.callbackTimeoutSeconds]...)
      error_message = "durable_execution_timeout_seconds must exceed every demo tenant's callbackTimeoutSeconds (src/shared/demo_tenants.json)."
    }
  }
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

# =============================================================================
# IAM: one execution role per function, least privilege, named resources only
# =============================================================================

data "aws_iam_policy_document" "lambda_assume_role" {
  statement {
    sid     = "LambdaAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = local.function_names[each.key]
  description        = each.value.role_description
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

# What each function may do besides writing its own logs and traces (the
# "function" document below adds those). Written as plain statement blocks
# rather than a dynamic block over a map: checkov reads no dynamic statement,
# so its IAM checks would pass them unread.

data "aws_iam_policy_document" "workflow" {
  statement {
    sid       = "ReadTenantConfiguration"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.tenants.arn]
  }

  # Exactly the calls src/shared/registry.py makes for the workflow:
  # claim_workflow (PutItem); register_waiting, the token item and record_outcome (UpdateItem).
  statement {
    sid       = "WriteWorkflowRegistry"
    actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.workflows.arn]
  }

  # Durable executions are sub-resources of a function version:
  # arn:...:function:NAME:VERSION/durable-execution/..., hence the ":*".
  statement {
    sid       = "DurableExecutionCheckpoints"
    actions   = ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"]
    resources = ["${aws_lambda_function.function["workflow"].arn}:*"]
  }

  # The submitter mints the callback token with the signing key ...
  statement {
    sid       = "ReadCallbackSigningKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.callback_signing_key.arn]
  }

  # ... and tells the external system: "Workflow Waiting For Callback" on the
  # deployment's bus, and no other.
  statement {
    sid       = "PutWaitingEvents"
    actions   = ["events:PutEvents"]
    resources = [aws_cloudwatch_event_bus.this.arn]
  }
}

data "aws_iam_policy_document" "api" {
  # get_workflow / find_by_callback / callback_claim (GetItem); the callback lease,
  # its settling and the registry repair (UpdateItem).
  statement {
    sid       = "ReadWriteWorkflowRegistry"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.workflows.arn]
  }

  # Callbacks are authorised against the durable execution ARN, which lives
  # under a version of the workflow function only.
  statement {
    sid = "CompleteWorkflowCallbacks"
    actions = [
      "lambda:SendDurableExecutionCallbackFailure",
      "lambda:SendDurableExecutionCallbackHeartbeat",
      "lambda:SendDurableExecutionCallbackSuccess",
    ]
    resources = ["${aws_lambda_function.function["workflow"].arn}:*"]
  }

  # When the durable service says a callback no longer waits, its history says
  # whether this answer, another one or the timeout ended it; an ended execution
  # repairs a registry item the workflow could not update (src/api/repair.py).
  statement {
    sid       = "ReadWorkflowExecutions"
    actions   = ["lambda:GetDurableExecution", "lambda:GetDurableExecutionHistory"]
    resources = ["${aws_lambda_function.function["workflow"].arn}:*"]
  }

  # The token route refuses tokens of a tenant that is not ACTIVE: it reads the
  # tenant's item on every token request (src/api/tokens.py).
  statement {
    sid       = "ReadTenantStatus"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.tenants.arn]
  }

  # GET /workflow/{workflowId} and the token route compute the waiting
  # callback's token with the current signing key (a rotation revokes earlier
  # tokens; GET then hands out the new one).
  statement {
    sid       = "ReadCallbackSigningKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.callback_signing_key.arn]
  }
}

data "aws_iam_policy_document" "authorizer" {
  statement {
    sid       = "ReadTenantKeyHash"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.tenants.arn]
  }
}

locals {
  # One document per key of local.functions (a test keeps the two equal).
  function_policies = {
    workflow   = data.aws_iam_policy_document.workflow.json
    api        = data.aws_iam_policy_document.api.json
    authorizer = data.aws_iam_policy_document.authorizer.json
  }
}

# A function's own statements, plus its logs and traces.
data "aws_iam_policy_document" "function" {
  for_each = local.functions

  source_policy_documents = [local.function_policies[each.key]]

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]
  }

  # X-Ray actions have no resource-level permissions: "*" is the only form.
  statement {
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${each.key}-least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}


# =============================================================================
# REST API: resources, authorizer, validators, model, gateway responses
# =============================================================================

resource "aws_api_gateway_rest_api" "this" {
  name        = "${local.name_prefix}-api"
  description = "Tenant-isolated durable callback workflow (routes from src/shared/api_contract.json)."
  # The request authorizer returns the tenant's verified API key as
  # usageIdentifierKey; API Gateway throttles and meters the request with that
  # key's usage plan (section "Per-tenant usage plans" below).
  api_key_source = "AUTHORIZER"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    # A replacement API is built before the old one goes, so the URL outputs never dangle.
    create_before_destroy = true

    precondition {
      condition     = alltrue([for segments in values(local.route_segments) : length(segments) <= 2])
      error_message = "The API resources support paths of at most two segments; extend main.tf for deeper paths in api_contract.json."
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

locals {
  resource_ids = merge(
    { for path, resource in aws_api_gateway_resource.level1 : path => resource.id },
    { for path, resource in aws_api_gateway_resource.level2 : path => resource.id },
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
}

resource "aws_api_gateway_gateway_response" "json" {
  for_each = local.gateway_responses

  rest_api_id   = aws_api_gateway_rest_api.this.id
  response_type = each.key
  status_code   = each.value.statusCode
  response_parameters = {
    for name, value in try(each.value.headers, {}) : "gatewayresponse.header.${name}" => value
  }

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
# GET /workflow/{workflowId}, POST /callback and POST /callbacks/{callbackToken}:
# AWS_PROXY to the API function
# =============================================================================

resource "aws_api_gateway_method" "proxy" {
  for_each = local.authorized_proxy_routes

  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = local.resource_ids[each.value.path]
  http_method          = each.value.method
  authorization        = "CUSTOM"
  authorizer_id        = aws_api_gateway_authorizer.tenant.id
  api_key_required     = true # the key comes from the authorizer: the tenant's usage plan applies
  request_validator_id = aws_api_gateway_request_validator.params_only.id

  request_parameters = merge(
    { "method.request.header.${local.tenant_header}" = true },
    { for name in local.route_path_params[each.key] : "method.request.path.${name}" => true },
  )
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
  request_parameters = { for name in local.route_path_params[each.key] : "method.request.path.${name}" => true }
}

locals {
  proxy_methods = merge(aws_api_gateway_method.proxy, aws_api_gateway_method.public_proxy)
}

resource "aws_api_gateway_integration" "proxy" {
  for_each = local.proxy_routes

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = local.proxy_methods[each.key].resource_id
  http_method             = local.proxy_methods[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = aws_lambda_function.function["api"].invoke_arn
}

resource "aws_lambda_permission" "proxy" {
  for_each = local.proxy_routes

  statement_id  = "AllowApiGateway-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["api"].function_name
  principal     = "apigateway.amazonaws.com"
  # Path parameters become "*": arn:...:API_ID/STAGE/GET/workflow/*,
  # .../POST/callbacks/* (the token route).
  source_arn = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/${each.value.method}${replace(each.value.path, "/{[^}]+}/", "*")}"
}

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

# =============================================================================
# Per-tenant usage plans: rate, burst and daily quota from demo_tenants.json
# =============================================================================

locals {
  # Each seeded tenant's plan, from its record in src/shared/demo_tenants.json
  # (local/throttle.py builds the local gateway's plans from the same fields).
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
  # others. The local gateway enforces the same defaults (local/throttle.py).
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

# Only what Lambda needs to deliver there, for each function's role (the queue
# is every function's dead_letter_config). Its own policy, attached before the
# functions are created: Lambda checks the permission at creation, and the
# functions' other documents name the functions, so they come after them.
data "aws_iam_policy_document" "dead_letter" {
  statement {
    sid       = "SendToDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }
}

resource "aws_iam_role_policy" "dead_letter" {
  for_each = local.functions

  name   = "${each.key}-dead-letter-queue"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.dead_letter.json
}

# How long and how often Lambda tries an event of workflow:live (the alias API
# Gateway invokes) before it goes to the dead-letter queue.
resource "aws_lambda_function_event_invoke_config" "workflow_live" {
  function_name                = aws_lambda_function.function["workflow"].function_name
  qualifier                    = aws_lambda_alias.workflow_live.name
  maximum_event_age_in_seconds = var.workflow_max_event_age_seconds
  maximum_retry_attempts       = var.workflow_retry_attempts
}

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
