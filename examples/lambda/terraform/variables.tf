variable "region" {
  description = "AWS region of every resource."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "myshoes"
}

variable "github_app_id" {
  description = "Numeric App ID from the GitHub App's settings page."
  type        = string
}

variable "github_private_key_parameter" {
  description = "Name of the SSM SecureString parameter that contains the base64 of the App's PEM private key. Create it outside Terraform so the key never enters the state."
  type        = string
}

variable "webhook_secret_parameter" {
  description = "Name of the SSM SecureString parameter that contains the App's webhook secret."
  type        = string
}

variable "github_host" {
  description = "GitHub instance: https://github.com or a GitHub Enterprise Server URL."
  type        = string
  default     = "https://github.com"
}

variable "tls_roots" {
  description = "Root certificates of the functions' HTTPS clients: mozilla (compiled in from Mozilla's list; the AWS clients get its five Amazon roots in the standard partition, see the README) or platform (the system store)."
  type        = string
  default     = "mozilla"
  validation {
    condition     = contains(["mozilla", "platform"], var.tls_roots)
    error_message = "tls_roots must be mozilla or platform."
  }
}

variable "targets" {
  description = "Organizations (owner) and repositories (owner/repo) that get runners."
  type        = list(string)
}

variable "runner_profiles" {
  description = "Runner profiles: a job gets a runner from the first profile whose labels contain all of the job's labels (self-hosted aside)."
  type = list(object({
    name   = string
    labels = list(string)
  }))
  default = [{ name = "linux-x64", labels = ["linux", "x64"] }]
}

variable "subnet_ids" {
  description = "Subnets of the runner tasks. They need a route to GitHub and to the container registry (NAT gateway, or public subnets with assign_public_ip)."
  type        = list(string)
}

variable "vpc_id" {
  description = "VPC of the subnets; the runner security group is created in it."
  type        = string
}

variable "assign_public_ip" {
  description = "Give runner tasks a public IP; needed in public subnets without a NAT gateway."
  type        = bool
  default     = false
}

variable "runner_image" {
  description = "Container image of the runner. The default has the Actions runner in /home/runner, and bash, base64 and gzip for the setup script."
  type        = string
  default     = "ghcr.io/actions/actions-runner:latest"
}

variable "runner_cpu" {
  description = "Fargate CPU units of a runner task."
  type        = number
  default     = 1024
}

variable "runner_memory_mib" {
  description = "Fargate memory of a runner task in MiB."
  type        = number
  default     = 2048
}

variable "lambda_zip_dir" {
  description = "Directory with webhook/bootstrap.zip, dispatcher/bootstrap.zip and sweeper/bootstrap.zip from cargo lambda build."
  type        = string
  default     = "../../../target/lambda"
}

variable "lambda_architecture" {
  description = "arm64 or x86_64; must match the cargo lambda build target."
  type        = string
  default     = "arm64"
}

variable "dispatcher_timeout_seconds" {
  description = "Dispatcher function timeout. The queue's visibility timeout is 6 times this."
  type        = number
  default     = 60
}

variable "dispatcher_batch_size" {
  description = "SQS records per dispatcher invocation."
  type        = number
  default     = 10
}

variable "dispatcher_max_concurrency" {
  description = "Maximum concurrent dispatcher invocations the event source mapping starts (2 to 1000)."
  type        = number
  default     = 5
}

variable "sweep_schedule" {
  description = "EventBridge schedule expression of the sweeper."
  type        = string
  default     = "rate(5 minutes)"
}

variable "log_retention_days" {
  description = "Retention of the functions' and runners' CloudWatch log groups."
  type        = number
  default     = 14
}
