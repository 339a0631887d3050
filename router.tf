# =============================================================================
# Queue entry: the start-queue router, its dead-letter queue and permissions
# =============================================================================
#
#   producer -> <prefix>-start-<tenant> (one SQS queue per tenant, created by
#               the provisioner at runtime, never by Terraform)
#            -> event source mapping (runtime too; ReportBatchItemFailures)
#            -> router function (src/router; defined in src/functions.json)
#            -> Invoke workflow:live, Event, TenantId = the queue's tenant
#   refused records -> <prefix>-router-dlq (this file) with a Reason attribute
#
# The router function itself is one of local.functions (main.tf): its role,
# log group and alarms come with the others; its own statements are here.
# docs/queue-entry.md explains the choices.

locals {
  # Every start queue of this deployment is "<prefix>-start-<tenant or hash>"
  # (the provisioner names them); the router reads those and no other queue.
  start_queue_name_prefix = "${local.name_prefix}-start-"
  # "arn:<partition>:sqs:<region>:<account>:", from a queue of this deployment
  # (no caller-identity lookup needed).
  sqs_arn_prefix        = replace(aws_sqs_queue.router_dead_letter.arn, "/[^:]+$/", "")
  start_queue_arn_glob  = "${local.sqs_arn_prefix}${local.start_queue_name_prefix}*"
  start_queue_index_arn = "${aws_dynamodb_table.tenants.arn}/index/startQueue"
}

# One dead-letter queue for every tenant's start queue (the redrive target of
# each, and where the router sends what it refuses). Shared, not per tenant:
# it is read by the operator, not by tenants; each message names its tenant
# and source queue in its attributes; and an idle tenant then costs one queue,
# not two. Encrypted with SQS's own key (the router needs no KMS permission).
resource "aws_sqs_queue" "router_dead_letter" {
  name                      = "${local.name_prefix}-router-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600 # 14 days, SQS's longest: time to inspect and redrive
}

# What the router may do besides writing its logs and traces (iam.tf adds those).
data "aws_iam_policy_document" "router" {
  # What an SQS event source mapping needs of its function's role, on this
  # deployment's start queues only.
  statement {
    sid       = "PollStartQueues"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [local.start_queue_arn_glob]
  }

  statement {
    sid       = "SendRefusedRecords"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.router_dead_letter.arn]
  }

  # The queue's tenant: the index finds it, the item (strongly consistent) confirms it and gives its status.
  statement {
    sid       = "FindQueueOwner"
    actions   = ["dynamodb:Query"]
    resources = [local.start_queue_index_arn]
  }

  statement {
    sid       = "ReadQueueOwnerStatus"
    actions   = ["dynamodb:GetItem"]
    resources = [aws_dynamodb_table.tenants.arn]
  }

  statement {
    sid       = "StartWorkflows"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_alias.workflow_live.arn]
  }
}

# =============================================================================
# The provisioner's part: each tenant's start queue and its mapping
# =============================================================================

# The provisioner creates and deletes each tenant's start queue and the
# queue's event source mapping, for the router only. Mapping actions can be
# narrowed to the function a mapping serves with the lambda:FunctionArn
# condition key (Lambda developer guide, "Fine-tuning the Resources and
# Conditions sections of policies"; Service Authorization Reference, "Actions,
# resources, and condition keys for AWS Lambda"). CreateEventSourceMapping
# names no mapping yet, so its resource is "*" and the condition is what
# scopes it; DeleteEventSourceMapping acts on a mapping (its ARN holds a random
# id) and gets both. ListEventSourceMappings (how the provisioner finds a
# queue's mapping to delete, or the one a retried create already made) reads
# only and has neither.
locals {
  router_function_arn       = aws_lambda_function.function["router"].arn
  event_source_mapping_glob = replace(local.router_function_arn, "/function:.*$/", "event-source-mapping:*")
}

data "aws_iam_policy_document" "provisioner_start_queues" {
  statement {
    sid       = "ManageStartQueues"
    actions   = ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SetQueueAttributes", "sqs:TagQueue"]
    resources = [local.start_queue_arn_glob]
  }

  statement {
    sid       = "MapStartQueuesToTheRouterOnly"
    actions   = ["lambda:CreateEventSourceMapping"]
    resources = ["*"]

    condition {
      test     = "ArnEquals"
      variable = "lambda:FunctionArn"
      values   = [local.router_function_arn]
    }
  }

  statement {
    sid       = "UnmapStartQueuesFromTheRouterOnly"
    actions   = ["lambda:DeleteEventSourceMapping"]
    resources = [local.event_source_mapping_glob]

    condition {
      test     = "ArnEquals"
      variable = "lambda:FunctionArn"
      values   = [local.router_function_arn]
    }
  }

  statement {
    sid       = "FindStartQueueMappings"
    actions   = ["lambda:ListEventSourceMappings"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "provisioner_start_queues" {
  name   = "provisioner-start-queues"
  role   = aws_iam_role.function["provisioner"].id
  policy = data.aws_iam_policy_document.provisioner_start_queues.json
}

output "router_dead_letter_queue_url" {
  description = "Where the router puts what cannot start a workflow (attribute Reason) and where start queues redrive exhausted messages."
  value       = aws_sqs_queue.router_dead_letter.url
}

output "router_dead_letter_queue_arn" {
  description = "ARN of the router's dead-letter queue (each start queue's redrive target)."
  value       = aws_sqs_queue.router_dead_letter.arn
}
