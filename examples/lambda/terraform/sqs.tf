# FIFO queues: SQS drops a second message with the same deduplication id (the job id)
# within 5 minutes, so a redelivered webhook does not enqueue the job twice.
resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name_prefix}-jobs-dlq.fifo"
  fifo_queue                = true
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue" "jobs" {
  name       = "${var.name_prefix}-jobs.fifo"
  fifo_queue = true
  # Lambda's guidance for SQS event sources: at least 6 times the function timeout.
  visibility_timeout_seconds = 6 * var.dispatcher_timeout_seconds
  message_retention_seconds  = 86400
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    # Each retry is one receive; the dispatcher's retry policy dead-letters earlier.
    maxReceiveCount = 10
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.jobs.arn]
  })
}
