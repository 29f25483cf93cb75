#!/bin/sh
# azd postdeploy hook: the functions exist now, so the Event Grid subscriptions (infra/subscriptions.bicep,
# generated from infra/event-subscriptions.json) and the alerts action group can be created.
# azd exports the provisioning outputs (AZURE_RESOURCE_GROUP, AZURE_FUNCTION_APP_NAME, ...) to hooks.
set -eu
cd "$(dirname "$0")/.."
az deployment group create \
  --name mlops-event-subscriptions \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --template-file subscriptions.bicep \
  --parameters \
    functionAppName="$AZURE_FUNCTION_APP_NAME" \
    storageAccountName="$AZURE_STORAGE_ACCOUNT_NAME" \
    storageTopicName="$STORAGE_SYSTEM_TOPIC_NAME" \
    workspaceTopicName="$WORKSPACE_SYSTEM_TOPIC_NAME" \
    lifecycleTopicName="$LIFECYCLE_TOPIC_NAME" \
    deadLetterContainer="$DEAD_LETTER_CONTAINER" \
    appInsightsName="${APPLICATIONINSIGHTS_NAME:-}" \
    notifyActionGroupId="${MLOPS_NOTIFY_ACTION_GROUP_ID:-}" \
    notifyEmails="${MLOPS_NOTIFY_EMAILS:-}" \
    notifySms="${MLOPS_NOTIFY_SMS:-}" \
  --output none
echo "Event Grid subscriptions, the alerts action group and (if asked) the decisions' action group are in place."
