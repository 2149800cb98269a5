"""The launcher's logic, apart from the Lambda handler: settings, S3 records to jobs, jobs to ECS tasks."""
