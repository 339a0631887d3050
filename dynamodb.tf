# =============================================================================
# DynamoDB: tenants table (written at runtime by the control plane) and workflow registry
# =============================================================================

# One item per tenant (policy, status, key hashes, metering key, generation),
# written by the admin API (src/control) and the provisioner, and the capacity
# ledger "#capacity". Terraform creates no item: tenants come and go at runtime.
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

  # Both indexes list one tenant's workflows newest first by
  # "<createdAt>#<workflowId>" and project what a listed item shows; only their
  # partition differs (local.workflow_list_indexes). The local stack expands
  # this block from this file (proving-ground/scripts/terraform_tables.py).
  dynamic "global_secondary_index" {
    for_each = local.workflow_list_indexes

    content {
      name               = global_secondary_index.key
      hash_key           = global_secondary_index.value
      range_key          = "createdKey"
      projection_type    = "INCLUDE"
      non_key_attributes = ["workflowId", "status", "createdAt", "callbackId", "callbackDeadline", "callbackTokenHash"]
    }
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

locals {
  # The pending list's indexes, by name => partition key: "<tenantId>#<status>"
  # for ?status=..., and "<tenantId>" while the workflow is open (removed when
  # it ends) for the default list.
  workflow_list_indexes = {
    byStatus = "statusPartition"
    open     = "openPartition"
  }
}
