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
  # (proving-ground/local/services/notifications.py): keep the two alike.
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
