output "webhook_url" {
  description = "Payload URL for the GitHub App's webhook settings."
  value       = aws_lambda_function_url.webhook.function_url
}

output "queue_url" {
  description = "Job queue."
  value       = aws_sqs_queue.jobs.url
}

output "dead_letter_queue_url" {
  description = "Jobs that got no runner, with the reason in the myshoes.dead_letter_reason message attribute."
  value       = aws_sqs_queue.dead_letter.url
}

output "cluster" {
  description = "ECS cluster of the runner tasks."
  value       = aws_ecs_cluster.runners.name
}
