# What a user pastes after `terraform apply`, and what tests read.

output "api_url" {
  description = "Base URL of the API stage (routes are appended to it)."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "export_api_key_command" {
  description = "Puts the first active demo tenant's API key into $API_KEY, which the curl commands send as the API key header. `make deploy` wrote the demo tenants' keys to .state/api-keys.json (mode 0600) when it onboarded them with tenantctl; no key is ever in the Terraform state."
  value       = "export API_KEY=\"$(python3 -c 'import json; print(json.load(open(\".state/api-keys.json\"))[\"${local.example_tenant_id}\"])')\""
}

output "start_workflow_curl" {
  description = "Starts a workflow for the first active demo tenant (run export_api_key_command first); the answer carries the workflowId."
  value = join(" ", [
    "curl -sS -X ${local.start_route.method} '${aws_api_gateway_stage.this.invoke_url}${local.start_route.path}'",
    "-H 'content-type: application/json'",
    "-H '${local.tenant_header}: ${local.example_tenant_id}' -H \"${local.api_key_header}: $API_KEY\"",
    "-d '${jsonencode({ amount = 120.5, currency = "EUR", description = "Invoice 42" })}'",
  ])
}

output "workflow_status_curl" {
  description = "Reads a workflow's status and, while it waits, its callbackId and callbackUrl (the external system POSTs its answer there, no key). Replace WORKFLOW_ID."
  value = join(" ", [
    "curl -sS -X ${local.routes.getWorkflow.method} '${aws_api_gateway_stage.this.invoke_url}${replace(local.routes.getWorkflow.path, "{workflowId}", "WORKFLOW_ID")}'",
    "-H '${local.tenant_header}: ${local.example_tenant_id}' -H \"${local.api_key_header}: $API_KEY\"",
  ])
}

output "send_callback_curl" {
  description = "Confirms a waiting workflow so it completes. Replace CALLBACK_ID with the status call's callbackId."
  value = join(" ", [
    "curl -sS -X ${local.routes.sendCallback.method} '${aws_api_gateway_stage.this.invoke_url}${local.routes.sendCallback.path}'",
    "-H 'content-type: application/json'",
    "-H '${local.tenant_header}: ${local.example_tenant_id}' -H \"${local.api_key_header}: $API_KEY\"",
    "-d '${jsonencode({ callbackId = "CALLBACK_ID", payload = { approved = true, reference = "ext-123" } })}'",
  ])
}

output "create_demo_tenants" {
  description = "Whether `make deploy` onboards the demo tenants (src/shared/demo_tenants.json) with tenantctl after the apply."
  value       = var.create_demo_tenants
}

output "aws_region" {
  description = "The region of the deployment (tenantctl signs its admin calls for it)."
  value       = var.aws_region
}

output "tenants_api_url" {
  description = "The admin API (AWS_IAM, SigV4 for execute-api): `python -m tenantctl --api-url \"$(terraform output -raw api_url)\" list`."
  value       = "${aws_api_gateway_stage.this.invoke_url}/tenants"
}

output "function_names" {
  description = "Name of each function by its key in src/functions.json (workflow, api, authorizer, control, provisioner, router)."
  value       = { for key, function in aws_lambda_function.function : key => function.function_name }
}

output "workflow_alias_arn" {
  description = "ARN of the alias \"live\" that API Gateway invokes (durable executions run on its version)."
  value       = aws_lambda_alias.workflow_live.arn
}

output "workflow_function_version" {
  description = "Published version of the workflow function that the alias points at."
  value       = aws_lambda_function.function["workflow"].version
}

output "tenants_table_name" {
  description = "Name of the DynamoDB table holding the tenants (written at runtime by the admin API and the provisioner)."
  value       = aws_dynamodb_table.tenants.name
}

output "workflows_table_name" {
  description = "Name of the DynamoDB workflow registry table."
  value       = aws_dynamodb_table.workflows.name
}

output "rest_api_id" {
  description = "Id of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "access_log_group_name" {
  description = "CloudWatch log group with the stage's JSON access logs."
  value       = aws_cloudwatch_log_group.this["api_access"].name
}

output "event_bus_name" {
  description = "EventBridge bus the workflow puts \"Workflow Waiting For Callback\" events on ({tenantId, workflowId, callbackUrl, expiresAt})."
  value       = aws_cloudwatch_event_bus.this.name
}

output "callback_queue_name_prefix" {
  description = "Every tenant's callback queue is named with this prefix (created by the provisioner); a tenant's URL is in `tenantctl get TENANT` (callbackQueueUrl)."
  value       = local.callback_queue_name_prefix
}

output "callback_signing_secret_arn" {
  description = "Secrets Manager secret holding the HMAC key of the callback tokens (its value is never in the Terraform state)."
  value       = aws_secretsmanager_secret.callback_signing_key.arn
}

output "usage_plans" {
  description = "Each tier's usage plan: id, requests per second, burst, requests per day (src/shared/tiers.json)."
  value = {
    for tier, plan in aws_api_gateway_usage_plan.tier : tier => merge({ id = plan.id }, local.tier_usage_plans[tier])
  }
}

output "dead_letter_queue_url" {
  description = "SQS dead-letter queue of the workflow start events Lambda gave up on: `aws sqs receive-message --queue-url \"$(terraform output -raw dead_letter_queue_url)\" --attribute-names All --message-attribute-names All`."
  value       = aws_sqs_queue.dead_letter.url
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue (the functions' dead_letter_config)."
  value       = aws_sqs_queue.dead_letter.arn
}

output "alarm_names" {
  description = "The CloudWatch alarms: `aws cloudwatch describe-alarms --alarm-names $(terraform output -json alarm_names | jq -r '.[]')`."
  value = concat(
    [for alarm in aws_cloudwatch_metric_alarm.query : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.metric : alarm.alarm_name],
    [aws_cloudwatch_metric_alarm.lambda_throttles.alarm_name],
  )
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify (null unless create_alarm_topic = true)."
  value       = one(aws_sns_topic.alarms[*].arn)
}

output "dashboard_url" {
  description = "CloudWatch dashboard with the per-tenant workflow outcomes and 429s, the API, the functions, the dead-letter queue and the alarms."
  value       = "https://${var.aws_region}.console.${data.aws_partition.current.partition == "aws" ? "aws.amazon.com" : "amazonaws.cn"}/cloudwatch/home?region=${var.aws_region}#dashboards/dashboard/${aws_cloudwatch_dashboard.this.dashboard_name}"
}
