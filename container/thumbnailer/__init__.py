"""The thumbnail worker: reads a video from S3 by ranges, writes thumbnails and a manifest."""
