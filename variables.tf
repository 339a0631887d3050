# Every input a user can set. Each variable has a description, a type, a
# default that deploys a working demo, and a validation block wherever a value
# can be wrong in a way AWS would only report half-way through an apply.

variable "aws_region" {
  description = "AWS Region to deploy to. It must offer Lambda durable functions and tenant isolation mode."
  type        = string
  default     = "us-east-2"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.aws_region))
    error_message = "aws_region must be an AWS Region code such as us-east-2 or eu-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, tables, roles, API). Lowercase letters, digits and hyphens."
  type        = string
  default     = "tenant-durable"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and hyphens, start with a letter and not end with a hyphen."
  }
}

variable "stage_name" {
  description = "Name of the API Gateway stage; it becomes the first path segment of the API URL."
  type        = string
  default     = "v1"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.stage_name))
    error_message = "stage_name must be 1-128 characters of letters, digits, hyphens and underscores."
  }
}

variable "workflow_zip_path" {
  description = "Path of the workflow function's deployment package. null means build/workflow.zip as written by `make build`."
  type        = string
  default     = null

  validation {
    condition     = var.workflow_zip_path == null || endswith(coalesce(var.workflow_zip_path, "unset.zip"), ".zip")
    error_message = "workflow_zip_path must name a .zip file (run `make build` to create build/workflow.zip)."
  }
}

variable "api_zip_path" {
  description = "Path of the API function's deployment package. null means build/api.zip as written by `make build`."
  type        = string
  default     = null

  validation {
    condition     = var.api_zip_path == null || endswith(coalesce(var.api_zip_path, "unset.zip"), ".zip")
    error_message = "api_zip_path must name a .zip file (run `make build` to create build/api.zip)."
  }
}

variable "authorizer_zip_path" {
  description = "Path of the request authorizer's deployment package. null means build/authorizer.zip as written by `make build`."
  type        = string
  default     = null

  validation {
    condition     = var.authorizer_zip_path == null || endswith(coalesce(var.authorizer_zip_path, "unset.zip"), ".zip")
    error_message = "authorizer_zip_path must name a .zip file (run `make build` to create build/authorizer.zip)."
  }
}

variable "create_demo_tenants" {
  description = "Whether `make deploy` onboards the demo tenants of src/shared/demo_tenants.json through the admin API (tenantctl create-demo) after the apply; their keys go to .state/api-keys.json (mode 0600), never into the Terraform state. Terraform itself creates no tenant either way."
  type        = bool
  default     = true
}

variable "durable_execution_timeout_seconds" {
  description = "Longest time one durable workflow execution may run, waits for callbacks included (durable_config.execution_timeout). Must exceed the longest tenant callback timeout."
  type        = number
  default     = 604800

  validation {
    condition     = var.durable_execution_timeout_seconds >= 1 && var.durable_execution_timeout_seconds <= 31622400 && floor(var.durable_execution_timeout_seconds) == var.durable_execution_timeout_seconds
    error_message = "durable_execution_timeout_seconds must be a whole number of seconds from 1 to 31622400 (366 days)."
  }
}

variable "durable_retention_days" {
  description = "Days Lambda keeps a finished durable execution's history (durable_config.retention_period)."
  type        = number
  default     = 7

  validation {
    condition     = var.durable_retention_days >= 1 && var.durable_retention_days <= 90 && floor(var.durable_retention_days) == var.durable_retention_days
    error_message = "durable_retention_days must be a whole number of days from 1 to 90."
  }
}

variable "workflow_timeout_seconds" {
  description = "Timeout of one invocation of the workflow function (each replay is one invocation; waits are not counted)."
  type        = number
  default     = 60

  validation {
    condition     = var.workflow_timeout_seconds >= 1 && var.workflow_timeout_seconds <= 900 && floor(var.workflow_timeout_seconds) == var.workflow_timeout_seconds
    error_message = "workflow_timeout_seconds must be a whole number of seconds from 1 to 900."
  }
}

variable "api_timeout_seconds" {
  description = "Timeout of the API function and of the request authorizer. API Gateway stops waiting after 29 seconds, so a longer timeout would only waste compute."
  type        = number
  default     = 10

  validation {
    condition     = var.api_timeout_seconds >= 1 && var.api_timeout_seconds <= 29 && floor(var.api_timeout_seconds) == var.api_timeout_seconds
    error_message = "api_timeout_seconds must be a whole number of seconds from 1 to 29 (API Gateway's integration timeout)."
  }
}

variable "workflow_memory_mb" {
  description = "Memory of the workflow function in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.workflow_memory_mb >= 128 && var.workflow_memory_mb <= 10240 && floor(var.workflow_memory_mb) == var.workflow_memory_mb
    error_message = "workflow_memory_mb must be a whole number of MB from 128 to 10240."
  }
}

variable "api_memory_mb" {
  description = "Memory of the API function and of the request authorizer in MB."
  type        = number
  default     = 256

  validation {
    condition     = var.api_memory_mb >= 128 && var.api_memory_mb <= 10240 && floor(var.api_memory_mb) == var.api_memory_mb
    error_message = "api_memory_mb must be a whole number of MB from 128 to 10240."
  }
}

variable "tenant_cache_ttl_seconds" {
  description = "How long the workflow function keeps a tenant's configuration in memory before reading the tenants table again."
  type        = number
  default     = 300

  validation {
    condition     = var.tenant_cache_ttl_seconds >= 1 && floor(var.tenant_cache_ttl_seconds) == var.tenant_cache_ttl_seconds
    error_message = "tenant_cache_ttl_seconds must be a positive whole number of seconds."
  }
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group this pattern creates (function logs, API access and execution logs)."
  type        = number
  default     = 14

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "log_level" {
  description = "Log level of the functions (POWERTOOLS_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the functions' embedded metrics (POWERTOOLS_METRICS_NAMESPACE)."
  type        = string
  default     = "TenantDurableWorkflow"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 characters of letters, digits and . _ / # : - and must not start with AWS/."
  }
}

variable "throttling_rate_limit" {
  description = "The stage's default throttle of each method, in requests per second, shared by every tenant; each tenant is throttled first by its tier's usage plan (src/shared/tiers.json). The control plane refuses (409) an onboarding or tier change that would make the sum of the tenants' rates exceed it."
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_rate_limit > 0
    error_message = "throttling_rate_limit must be greater than 0 requests per second."
  }
}

variable "throttling_burst_limit" {
  description = "The stage's default burst of each method, shared by every tenant; the control plane keeps the sum of the tenants' bursts (their tiers', src/shared/tiers.json) within it."
  type        = number
  default     = 200

  validation {
    condition     = var.throttling_burst_limit >= 1 && floor(var.throttling_burst_limit) == var.throttling_burst_limit
    error_message = "throttling_burst_limit must be a positive whole number of requests."
  }
}

variable "callback_throttling_rate_limit" {
  description = "Requests per second of POST /callbacks/{callbackToken}, the route without the authorizer: it carries no tenant key, so no usage plan meters it. null: the stage's throttling_rate_limit (the route keeps the stage's throttling, in a bucket of its own), as the local gateway enforces."
  type        = number
  default     = null

  validation {
    condition     = var.callback_throttling_rate_limit == null ? true : var.callback_throttling_rate_limit > 0
    error_message = "callback_throttling_rate_limit must be greater than 0 requests per second."
  }
}

variable "callback_throttling_burst_limit" {
  description = "Burst of POST /callbacks/{callbackToken} above its rate limit. null: the stage's throttling_burst_limit, as the local gateway enforces."
  type        = number
  default     = null

  validation {
    condition     = var.callback_throttling_burst_limit == null ? true : (var.callback_throttling_burst_limit >= 1 && floor(var.callback_throttling_burst_limit) == var.callback_throttling_burst_limit)
    error_message = "callback_throttling_burst_limit must be a positive whole number of requests."
  }
}

variable "workflow_max_event_age_seconds" {
  description = "How long Lambda keeps retrying a workflow start event (an asynchronous invocation of workflow:live) before it goes to the dead-letter queue."
  type        = number
  default     = 21600

  validation {
    condition     = var.workflow_max_event_age_seconds >= 60 && var.workflow_max_event_age_seconds <= 21600 && floor(var.workflow_max_event_age_seconds) == var.workflow_max_event_age_seconds
    error_message = "workflow_max_event_age_seconds must be a whole number of seconds from 60 to 21600 (6 hours)."
  }
}

variable "workflow_retry_attempts" {
  description = "Retries Lambda makes of a workflow start event whose invocation failed, before it goes to the dead-letter queue."
  type        = number
  default     = 2

  validation {
    condition     = contains([0, 1, 2], var.workflow_retry_attempts)
    error_message = "workflow_retry_attempts must be 0, 1 or 2."
  }
}

variable "throttled_requests_alarm_threshold" {
  description = "The throttling alarm goes off above this many 429s (all tenants) in 5 minutes; a tenant hitting its plan now and then is the plan doing its job."
  type        = number
  default     = 100

  validation {
    condition     = var.throttled_requests_alarm_threshold >= 0 && floor(var.throttled_requests_alarm_threshold) == var.throttled_requests_alarm_threshold
    error_message = "throttled_requests_alarm_threshold must be a whole number of requests, 0 or more."
  }
}

variable "create_alarm_topic" {
  description = "Create an SNS topic, encrypted with a KMS key of its own (a monthly key fee), that every alarm notifies on ALARM and OK. Without it the alarms only change state (console, dashboard)."
  type        = bool
  default     = false
}

variable "alarm_emails" {
  description = "Email addresses subscribed to the alarm topic (each must confirm by email). Needs create_alarm_topic = true."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for address in var.alarm_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", address))]) && (length(var.alarm_emails) == 0 || var.create_alarm_topic)
    error_message = "alarm_emails must be email addresses, and need create_alarm_topic = true."
  }
}

variable "manage_api_gateway_account" {
  description = "Point the Region-wide API Gateway account setting at a CloudWatch Logs role this module creates (stage logging needs one); hashicorp/aws 6.x resets the setting on destroy. Set false when the account already has a role that other APIs rely on."
  type        = bool
  default     = true
}

variable "dynamodb_kms_key_arn" {
  description = "Customer managed KMS key for both tables. null uses the AWS managed key (aws/dynamodb)."
  type        = string
  default     = null

  validation {
    condition     = var.dynamodb_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", coalesce(var.dynamodb_kms_key_arn, "-")))
    error_message = "dynamodb_kms_key_arn must be null or a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "tags" {
  description = "Extra tags for every resource (added to the provider's default tags)."
  type        = map(string)
  default     = {}
}
