# =============================================================================
# Callback tokens and notification: signing key, event bus (tenant queues at runtime)
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

  # Each tenant's rule on this bus and its encrypted queue (with the queue
  # policy that lets only that rule send) are created at runtime by the
  # provisioner (src/provisioner/resources.py), named
  # <prefix>-callbacks-<tenant> or, for an id that does not fit, a hash
  # (shared.tenants.tenant_resource_names). Terraform creates none of them;
  # `make destroy` offboards every tenant first, as EventBridge refuses to
  # delete a bus that still has rules.
  callback_queue_name_prefix = "${local.name_prefix}-callbacks"
}

# The submitter puts one event per wait here (src/workflow/notify.py).
resource "aws_cloudwatch_event_bus" "this" {
  name = local.event_bus_name
}
