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

locals {
  # Durable executions are sub-resources of a function version:
  # arn:...:function:NAME:VERSION/durable-execution/..., hence the ":*".
  workflow_executions = "${aws_lambda_function.function["workflow"].arn}:*"
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

  statement {
    sid       = "DurableExecutionCheckpoints"
    actions   = ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"]
    resources = [local.workflow_executions]
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
    resources = [local.workflow_executions]
  }

  # When the durable service says a callback no longer waits, its history says
  # whether this answer, another one or the timeout ended it; an ended execution
  # repairs a registry item the workflow could not update (src/api/repair.py).
  statement {
    sid       = "ReadWorkflowExecutions"
    actions   = ["lambda:GetDurableExecution", "lambda:GetDurableExecutionHistory"]
    resources = [local.workflow_executions]
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
  # The tenant's status, key hashes and metering key, strongly consistent on every request.
  statement {
    sid       = "ReadTenantKeyHash"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.tenants.arn]
  }
}

# The admin API: the tenants table (items and the capacity ledger, in one
# transaction: TransactWriteItems is authorized as the PutItem, UpdateItem and
# ConditionCheckItem of its parts) and starting the provisioner on its alias.
data "aws_iam_policy_document" "control" {
  statement {
    sid       = "ReadWriteTenants"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:Scan"]
    resources = [aws_dynamodb_table.tenants.arn]
  }

  statement {
    sid       = "StartProvisioning"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_alias.provisioner_live.arn]
  }
}

locals {
  # This deployment's per-tenant resources, which the provisioner creates and
  # deletes at runtime, by name prefix: "<prefix>-callbacks..." queues and the
  # rules of the same names on this deployment's bus. The ARN prefixes come from
  # resources of this deployment (no caller-identity lookup).
  sqs_arn_base              = replace(aws_sqs_queue.dead_letter.arn, "/[^:]+$/", "")
  callback_queue_arn_glob   = "${local.sqs_arn_base}${local.callback_queue_name_prefix}*"
  callback_rule_arn_glob    = "${replace(aws_cloudwatch_event_bus.this.arn, ":event-bus/", ":rule/")}/${local.callback_queue_name_prefix}*"
  apigateway_arn_base       = "arn:${data.aws_partition.current.partition}:apigateway:${var.aws_region}::"
  tier_usage_plan_key_globs = [for plan in aws_api_gateway_usage_plan.tier : "${local.apigateway_arn_base}/usageplans/${plan.id}/keys*"]
}

# What IAM can and cannot scope for API Gateway keys: an API key's ARN
# (arn:aws:apigateway:REGION::/apikeys/ID) holds a random id, not a name, so no
# name prefix can scope it. API Gateway's tag condition keys can ("Using tags to
# control access to API Gateway REST API resources", API Gateway developer
# guide): a key may be created only with the tag deployment = <prefix>
# (aws:RequestTag) and deleted only when it carries that tag (aws:ResourceTag).
# Listing and reading keys (GET /apikeys, GET /apikeys/ID) cannot be narrowed
# by tag and read only. A key enters or leaves only the tiers' usage plans of
# this deployment (their ARNs).
data "aws_iam_policy_document" "provisioner" {
  statement {
    sid       = "ReadTenants"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.tenants.arn]
  }

  # settle_status: the tenant's move and the capacity ledger in one transaction.
  statement {
    sid       = "MoveTenantStatus"
    actions   = ["dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.tenants.arn]
  }

  # Offboarding looks for the tenant's waiting workflows on its partition (a Query, never a Scan) ...
  statement {
    sid       = "FindWaitingWorkflows"
    actions   = ["dynamodb:Query"]
    resources = [aws_dynamodb_table.workflows.arn]
  }

  # ... and fails each one's callback (the workflow ends FAILED, "the tenant was offboarded").
  statement {
    sid       = "FailWaitingWorkflows"
    actions   = ["lambda:SendDurableExecutionCallbackFailure"]
    resources = [local.workflow_executions]
  }

  # Its own executions' checkpoints (like the workflow's, under a version).
  statement {
    sid       = "DurableExecutionCheckpoints"
    actions   = ["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"]
    resources = ["${aws_lambda_function.function["provisioner"].arn}:*"]
  }

  statement {
    sid       = "ManageCallbackQueues"
    actions   = ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SetQueueAttributes"]
    resources = [local.callback_queue_arn_glob]
  }

  statement {
    sid       = "ManageCallbackRules"
    actions   = ["events:PutRule", "events:DeleteRule", "events:PutTargets", "events:RemoveTargets", "events:DescribeRule"]
    resources = [local.callback_rule_arn_glob]
  }

  statement {
    sid       = "CreateDeploymentTaggedKeys"
    actions   = ["apigateway:POST"]
    resources = ["${local.apigateway_arn_base}/apikeys", "${local.apigateway_arn_base}/tags/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/deployment"
      values   = [local.name_prefix]
    }
  }

  statement {
    sid       = "DeleteDeploymentTaggedKeys"
    actions   = ["apigateway:DELETE"]
    resources = ["${local.apigateway_arn_base}/apikeys/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/deployment"
      values   = [local.name_prefix]
    }
  }

  statement {
    sid       = "ReadKeysAndPlans"
    actions   = ["apigateway:GET"]
    resources = ["${local.apigateway_arn_base}/apikeys", "${local.apigateway_arn_base}/apikeys/*", "${local.apigateway_arn_base}/usageplans"]
  }

  statement {
    sid       = "KeysInTheTiersPlans"
    actions   = ["apigateway:POST", "apigateway:DELETE", "apigateway:GET"]
    resources = local.tier_usage_plan_key_globs
  }
}

locals {
  # One document per key of local.functions (a test keeps the two equal).
  function_policies = {
    workflow    = data.aws_iam_policy_document.workflow.json
    api         = data.aws_iam_policy_document.api.json
    authorizer  = data.aws_iam_policy_document.authorizer.json
    control     = data.aws_iam_policy_document.control.json
    provisioner = data.aws_iam_policy_document.provisioner.json
    router      = data.aws_iam_policy_document.router.json # router.tf
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

# Only what Lambda needs to deliver to the dead-letter queue (operations.tf),
# for each function's role (the queue is every function's dead_letter_config).
# Its own policy, attached before the functions are created: Lambda checks the permission at creation, and the
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
