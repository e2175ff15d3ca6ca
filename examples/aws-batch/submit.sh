#!/usr/bin/env bash
# An AWS Batch array job of 4 workers (index from AWS_BATCH_JOB_ARRAY_INDEX, size from
# AWS_BATCH_JOB_ARRAY_SIZE; --worker-count is passed too), then the merge, which starts only
# when every child of the array succeeded.
set -euo pipefail
queue="${1:?usage: submit.sh JOB_QUEUE}"
aws batch register-job-definition --cli-input-json file://job-definition.json >/dev/null
aws batch register-job-definition --cli-input-json file://merge-definition.json >/dev/null
array=$(aws batch submit-job --job-name hardneg-mine --job-queue "$queue" --job-definition hardneg-mine \
  --array-properties size=4 --parameters workers=4 --query jobId --output text)
aws batch submit-job --job-name hardneg-merge --job-queue "$queue" --job-definition hardneg-merge \
  --depends-on "jobId=$array" --query jobId --output text
