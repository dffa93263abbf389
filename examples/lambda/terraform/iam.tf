# One role per function, each with only the actions its code calls.

locals {
  log_group_arn = { for name, group in aws_cloudwatch_log_group.function : name => group.arn }
  ssm_parameter_arn = {
    for name in [var.github_private_key_parameter, var.webhook_secret_parameter] :
    name => "${local.arn_prefix}:ssm:${var.region}:${local.account_id}:parameter/${trimprefix(name, "/")}"
  }
  runner_task_arns = "${local.arn_prefix}:ecs:${var.region}:${local.account_id}:task/${aws_ecs_cluster.runners.name}/*"
}

# --- webhook: sends jobs to the queue ---------------------------------------------------

resource "aws_iam_role" "webhook" {
  name               = "${var.name_prefix}-webhook"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "webhook" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arn["webhook"]}:*"]
  }
  statement {
    sid       = "EnqueueJobs"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.jobs.arn]
  }
  statement {
    sid       = "WebhookSecret"
    actions   = ["ssm:GetParameter"]
    resources = [local.ssm_parameter_arn[var.webhook_secret_parameter]]
  }
}

resource "aws_iam_role_policy" "webhook" {
  role   = aws_iam_role.webhook.id
  policy = data.aws_iam_policy_document.webhook.json
}

# --- dispatcher: consumes the queue and starts runner tasks -----------------------------

resource "aws_iam_role" "dispatcher" {
  name               = "${var.name_prefix}-dispatcher"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "dispatcher" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arn["dispatcher"]}:*"]
  }
  statement {
    # ReceiveMessage, DeleteMessage and GetQueueAttributes: the event source mapping.
    # DeleteMessage and ChangeMessageVisibility: acknowledging and retrying jobs.
    sid = "ConsumeJobs"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.jobs.arn]
  }
  statement {
    sid       = "DeadLetterJobs"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }
  statement {
    sid       = "RunRunnerTasks"
    actions   = ["ecs:RunTask"]
    resources = ["${local.arn_prefix}:ecs:${var.region}:${local.account_id}:task-definition/${aws_ecs_task_definition.runner.family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.runners.arn]
    }
  }
  statement {
    # RunTask sends the runner's tags.
    sid       = "TagRunnerTasks"
    actions   = ["ecs:TagResource"]
    resources = [local.runner_task_arns]
    condition {
      test     = "StringEquals"
      variable = "ecs:CreateAction"
      values   = ["RunTask"]
    }
  }
  statement {
    sid       = "PassRunnerRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.runner_execution.arn, aws_iam_role.runner_task.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  statement {
    sid       = "GitHubAppKey"
    actions   = ["ssm:GetParameter"]
    resources = [local.ssm_parameter_arn[var.github_private_key_parameter]]
  }
}

resource "aws_iam_role_policy" "dispatcher" {
  role   = aws_iam_role.dispatcher.id
  policy = data.aws_iam_policy_document.dispatcher.json
}

# --- sweeper: lists and stops runner tasks ----------------------------------------------

resource "aws_iam_role" "sweeper" {
  name               = "${var.name_prefix}-sweeper"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "sweeper" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arn["sweeper"]}:*"]
  }
  statement {
    sid       = "ListRunnerTasks"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.runners.arn]
    }
  }
  statement {
    sid       = "InspectAndStopRunnerTasks"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = [local.runner_task_arns]
  }
  statement {
    sid       = "GitHubAppKey"
    actions   = ["ssm:GetParameter"]
    resources = [local.ssm_parameter_arn[var.github_private_key_parameter]]
  }
}

resource "aws_iam_role_policy" "sweeper" {
  role   = aws_iam_role.sweeper.id
  policy = data.aws_iam_policy_document.sweeper.json
}
