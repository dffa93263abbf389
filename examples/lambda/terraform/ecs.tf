resource "aws_ecs_cluster" "runners" {
  name = "${var.name_prefix}-runners"
}

resource "aws_cloudwatch_log_group" "runners" {
  name              = "/ecs/${var.name_prefix}-runners"
  retention_in_days = var.log_retention_days
}

resource "aws_security_group" "runners" {
  name        = "${var.name_prefix}-runners"
  description = "Runner tasks: outbound only"
  vpc_id      = var.vpc_id

  egress {
    description = "GitHub, the container registry and whatever the jobs fetch"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Pulls the image and writes the container's logs.
resource "aws_iam_role" "runner_execution" {
  name               = "${var.name_prefix}-runner-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "runner_execution" {
  role       = aws_iam_role.runner_execution.name
  policy_arn = "${local.arn_prefix}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

# The role jobs run with. It has no permissions: grant what your workflows need.
resource "aws_iam_role" "runner_task" {
  name               = "${var.name_prefix}-runner-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_ecs_task_definition" "runner" {
  family                   = "${var.name_prefix}-runner"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.runner_cpu
  memory                   = var.runner_memory_mib
  execution_role_arn       = aws_iam_role.runner_execution.arn
  task_role_arn            = aws_iam_role.runner_task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  container_definitions = jsonencode([{
    name      = "runner"
    image     = var.runner_image
    essential = true
    # The dispatcher replaces the command with the setup script.
    command = ["bash", "-c", "echo 'started without a setup script' >&2; exit 1"]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.runners.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "runner"
      }
    }
  }])
}
