# State moves for deployments made before the three functions and the log
# groups were built from one map (issue 10), and the start route's two
# integration responses from its JSON file: `terraform apply` renames these
# resources in the state instead of destroying and recreating them. A new
# deployment, or a copy of the pattern, does not need this file.

moved {
  from = aws_lambda_function.workflow
  to   = aws_lambda_function.function["workflow"]
}

moved {
  from = aws_iam_role.workflow
  to   = aws_iam_role.function["workflow"]
}

moved {
  from = aws_iam_role_policy.workflow
  to   = aws_iam_role_policy.function["workflow"]
}

moved {
  from = aws_lambda_function.api
  to   = aws_lambda_function.function["api"]
}

moved {
  from = aws_iam_role.api
  to   = aws_iam_role.function["api"]
}

moved {
  from = aws_iam_role_policy.api
  to   = aws_iam_role_policy.function["api"]
}

moved {
  from = aws_lambda_function.authorizer
  to   = aws_lambda_function.function["authorizer"]
}

moved {
  from = aws_iam_role.authorizer
  to   = aws_iam_role.function["authorizer"]
}

moved {
  from = aws_iam_role_policy.authorizer
  to   = aws_iam_role_policy.function["authorizer"]
}

moved {
  from = aws_cloudwatch_log_group.workflow
  to   = aws_cloudwatch_log_group.this["workflow"]
}

moved {
  from = aws_cloudwatch_log_group.api
  to   = aws_cloudwatch_log_group.this["api"]
}

moved {
  from = aws_cloudwatch_log_group.authorizer
  to   = aws_cloudwatch_log_group.this["authorizer"]
}

moved {
  from = aws_cloudwatch_log_group.api_access
  to   = aws_cloudwatch_log_group.this["api_access"]
}

moved {
  from = aws_cloudwatch_log_group.api_execution
  to   = aws_cloudwatch_log_group.this["api_execution"]
}

moved {
  from = aws_api_gateway_integration_response.start_workflow_accepted
  to   = aws_api_gateway_integration_response.start_workflow["accepted"]
}

moved {
  from = aws_api_gateway_integration_response.start_workflow_failed
  to   = aws_api_gateway_integration_response.start_workflow["failed"]
}
