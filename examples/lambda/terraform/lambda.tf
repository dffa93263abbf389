locals {
  myshoes_config = jsonencode({
    github_host = var.github_host
    targets     = [for scope in var.targets : { scope = scope }]
    profiles    = var.runner_profiles
  })

  ecs_environment = {
    ECS_TASK_CLUSTER          = aws_ecs_cluster.runners.name
    ECS_TASK_DEFINITION_ARN   = aws_ecs_task_definition.runner.family
    ECS_TASK_CONTAINER_NAME   = "runner"
    ECS_TASK_SUBNETS          = join(",", var.subnet_ids)
    ECS_TASK_SECURITY_GROUPS  = aws_security_group.runners.id
    ECS_TASK_ASSIGN_PUBLIC_IP = tostring(var.assign_public_ip)
    ECS_TASK_LAUNCH_TYPE      = "FARGATE"
  }

  github_app_environment = {
    MYSHOES_TLS_ROOTS                       = var.tls_roots
    GITHUB_APP_ID                           = var.github_app_id
    GITHUB_PRIVATE_KEY_BASE64_SSM_PARAMETER = var.github_private_key_parameter
  }
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# Log groups exist before the functions, so Terraform owns their retention and the roles
# need no logs:CreateLogGroup.
resource "aws_cloudwatch_log_group" "function" {
  for_each          = toset(["webhook", "dispatcher", "sweeper"])
  name              = "/aws/lambda/${var.name_prefix}-${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "webhook" {
  function_name    = "${var.name_prefix}-webhook"
  role             = aws_iam_role.webhook.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.lambda_architecture]
  filename         = "${var.lambda_zip_dir}/webhook/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.lambda_zip_dir}/webhook/bootstrap.zip")
  memory_size      = 128
  # GitHub waits 10 seconds for a response.
  timeout = 8
  environment {
    variables = {
      MYSHOES_CONFIG                  = local.myshoes_config
      MYSHOES_TLS_ROOTS               = var.tls_roots
      GITHUB_APP_SECRET_SSM_PARAMETER = var.webhook_secret_parameter
      AWS_SQS_QUEUE_URL               = aws_sqs_queue.jobs.url
    }
  }
  depends_on = [aws_cloudwatch_log_group.function]
}

resource "aws_lambda_function_url" "webhook" {
  function_name      = aws_lambda_function.webhook.function_name
  authorization_type = "NONE" # GitHub cannot sign AWS requests; the handler checks the webhook signature.
}

resource "aws_lambda_function" "dispatcher" {
  function_name    = "${var.name_prefix}-dispatcher"
  role             = aws_iam_role.dispatcher.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.lambda_architecture]
  filename         = "${var.lambda_zip_dir}/dispatcher/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.lambda_zip_dir}/dispatcher/bootstrap.zip")
  memory_size      = 256
  timeout          = var.dispatcher_timeout_seconds
  environment {
    variables = merge(local.ecs_environment, local.github_app_environment, {
      MYSHOES_CONFIG                = local.myshoes_config
      AWS_SQS_QUEUE_URL             = aws_sqs_queue.jobs.url
      AWS_SQS_DEAD_LETTER_QUEUE_URL = aws_sqs_queue.dead_letter.url
      RUNNER_DIR                    = "/home/runner"
    })
  }
  depends_on = [aws_cloudwatch_log_group.function]
}

resource "aws_lambda_event_source_mapping" "dispatcher" {
  event_source_arn        = aws_sqs_queue.jobs.arn
  function_name           = aws_lambda_function.dispatcher.arn
  batch_size              = var.dispatcher_batch_size
  function_response_types = ["ReportBatchItemFailures"]
  scaling_config {
    maximum_concurrency = var.dispatcher_max_concurrency
  }
}

resource "aws_lambda_function" "sweeper" {
  function_name    = "${var.name_prefix}-sweeper"
  role             = aws_iam_role.sweeper.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.lambda_architecture]
  filename         = "${var.lambda_zip_dir}/sweeper/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.lambda_zip_dir}/sweeper/bootstrap.zip")
  memory_size      = 128
  timeout          = 120
  # One pass at a time: the sweep lock lives in one instance's memory.
  reserved_concurrent_executions = 1
  environment {
    variables = merge(local.ecs_environment, local.github_app_environment, {
      MYSHOES_CONFIG = local.myshoes_config
    })
  }
  depends_on = [aws_cloudwatch_log_group.function]
}

resource "aws_cloudwatch_event_rule" "sweep" {
  name                = "${var.name_prefix}-sweep"
  schedule_expression = var.sweep_schedule
}

resource "aws_cloudwatch_event_target" "sweep" {
  rule = aws_cloudwatch_event_rule.sweep.name
  arn  = aws_lambda_function.sweeper.arn
}

resource "aws_lambda_permission" "sweep" {
  statement_id  = "AllowEventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.sweeper.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep.arn
}
