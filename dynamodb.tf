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

  # The router's lookup from a start queue to its tenant (src/router/app.py
  # queue_owner): the record's eventSourceARN, never its body, names the
  # tenant. Keys only: the router then reads the tenant's item strongly
  # consistent for its status. Only tenants with a start queue are indexed.
  attribute {
    name = "startQueueArn"
    type = "S"
  }

  global_secondary_index {
    name            = "startQueue"
    hash_key        = "startQueueArn"
    projection_type = "KEYS_ONLY"
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

  # The pending list (GET /workflows): one Query per page on one tenant's
  # partition of an index, never a Scan (src/shared/registry.py list_workflows).
  # Global, not local, secondary indexes: an LSI can only be created with the
  # table (adding one replaces the table, and the registry with it) and caps a
  # tenant's items at 10 GB; a GSI is added in place. Only workflow items carry
  # the index keys (callback and token items are in neither index), and each
  # index projects what a listed item shows, not the result (up to 384 KB).
  attribute {
    name = "statusPartition"
    type = "S"
  }

  attribute {
    name = "openPartition"
    type = "S"
  }

  attribute {
    name = "createdKey"
    type = "S"
  }

  # "<tenantId>#<status>", newest first by "<createdAt>#<workflowId>": ?status=...
  global_secondary_index {
    name               = "byStatus"
    hash_key           = "statusPartition"
    range_key          = "createdKey"
    projection_type    = "INCLUDE"
    non_key_attributes = ["workflowId", "status", "createdAt", "callbackId", "callbackDeadline", "callbackTokenHash"]
  }

  # "<tenantId>" while the workflow is open (removed when it ends): the default list.
  global_secondary_index {
    name               = "open"
    hash_key           = "openPartition"
    range_key          = "createdKey"
    projection_type    = "INCLUDE"
    non_key_attributes = ["workflowId", "status", "createdAt", "callbackId", "callbackDeadline", "callbackTokenHash"]
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
