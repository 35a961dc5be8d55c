"""logcast shared package: settings, AMQP plumbing, message format, logging."""
