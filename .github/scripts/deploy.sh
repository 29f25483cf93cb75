#!/usr/bin/env bash
# Provision one environment and deploy the Function App into it. The GitHub workflows (deploy-dev,
# promote-preprod, promote-prod) and azure-pipelines.yml all run this, already signed in: az for the
# deployments and azd's postdeploy hook, azd for the code.
#
#   .github/scripts/deploy.sh dev|preprod|prod
#
# 1. the shared Azure ML registry: infra/registry.bicep with infra/environments/registry.parameters.json
#    (an unchanged deployment changes nothing, so every environment's run does it);
# 2. the environment: infra/main.bicep with infra/environments/<stage>.parameters.json, as a subscription
#    deployment named after its environmentName (mlops-<stage>). A value the file still holds as a
#    <placeholder> is filled in: preprod's promotionTopicEndpoint with prod's custom topic, prod's
#    promoterPrincipalId with preprod's function identity, dataScientistsGroupId with
#    MLOPS_DATA_SCIENTISTS_GROUP_ID (empty: no grant);
# 3. the code: azd deploy into an azd environment of the same name holding the deployment's outputs; azd's
#    postdeploy hook (infra/hooks/postdeploy.sh) then creates the Event Grid subscriptions.
#
# Reads AZURE_SUBSCRIPTION_ID; AZURE_ENV_NAME, when set, must be the file's environmentName.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage="${1:-}"
case "$stage" in
  dev|preprod|prod) ;;
  *) echo "usage: $0 dev|preprod|prod" >&2; exit 2 ;;
esac
: "${AZURE_SUBSCRIPTION_ID:?set AZURE_SUBSCRIPTION_ID}"

params="infra/environments/$stage.parameters.json"
value() { jq -r --arg name "$2" '.parameters[$name].value // ""' "$1"; }
unset_or_placeholder() { case "$1" in "" | *"<"*">"*) return 0 ;; *) return 1 ;; esac; }

env_name="$(value "$params" environmentName)"
location="$(value "$params" location)"
if [ -n "${AZURE_ENV_NAME:-}" ] && [ "$AZURE_ENV_NAME" != "$env_name" ]; then
  echo "AZURE_ENV_NAME is $AZURE_ENV_NAME but $params deploys $env_name" >&2
  exit 2
fi
az account set --subscription "$AZURE_SUBSCRIPTION_ID"

# 1. the registry the environments share
registry_params=infra/environments/registry.parameters.json
if [ -n "$(value "$params" registryName)" ]; then
  echo "::group::registry (infra/registry.bicep)"
  az deployment sub create --name mlops-registry \
    --location "$(jq -r '.parameters.regions.value[0]' "$registry_params")" \
    --template-file infra/registry.bicep --parameters "$registry_params" --output none
  echo "::endgroup::"
fi

# 2. the environment, with the values only another environment knows
overrides=()
group="${MLOPS_DATA_SCIENTISTS_GROUP_ID:-$(value "$params" dataScientistsGroupId)}"
unset_or_placeholder "$group" && group=""
overrides+=("dataScientistsGroupId=$group")
if [ "$stage" = preprod ] && unset_or_placeholder "$(value "$params" promotionTopicEndpoint)"; then
  prod_rg="rg-$(value infra/environments/prod.parameters.json environmentName)"
  topic="$(az eventgrid topic list --resource-group "$prod_rg" --query "[0].endpoint" --output tsv 2>/dev/null || true)"
  if [ -z "$topic" ]; then
    echo "preprod tells prod of each model it shares, on prod's custom topic, and $prod_rg has none:" \
         "deploy prod first (promote-prod), or set promotionTopicEndpoint in $params" >&2
    exit 1
  fi
  overrides+=("promotionTopicEndpoint=$topic")
fi
if [ "$stage" = prod ] && unset_or_placeholder "$(value "$params" promoterPrincipalId)"; then
  preprod_rg="rg-$(value infra/environments/preprod.parameters.json environmentName)"
  # empty while preprod does not exist: prod's first deployment comes before preprod's (which needs prod's topic)
  promoter="$(az identity list --resource-group "$preprod_rg" \
    --query "[?starts_with(name, 'id-func-')].principalId | [0]" --output tsv 2>/dev/null || true)"
  overrides+=("promoterPrincipalId=$promoter")
fi

echo "::group::$env_name (infra/main.bicep)"
outputs="$(az deployment sub create --name "$env_name" --location "$location" \
  --template-file infra/main.bicep --parameters "$params" --parameters "${overrides[@]}" \
  --query properties.outputs --output json)"
echo "::endgroup::"

# 3. the code, and the Event Grid subscriptions once the functions exist
azd env select "$env_name" 2>/dev/null \
  || azd env new "$env_name" --subscription "$AZURE_SUBSCRIPTION_ID" --location "$location" --no-prompt
# ARM may return an output's name in another case (azurE_LOCATION): the names are upper case in main.bicep
jq -r 'to_entries[] | "\(.key | ascii_upcase)\t\(.value.value)"' <<<"$outputs" |
  while IFS=$'\t' read -r key val; do azd env set "$key" "$val"; done
azd deploy --no-prompt
