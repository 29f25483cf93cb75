// Everything the event-driven MLOps chain needs in one resource group, provisioned by `azd up`.
// The Event Grid subscriptions are not here: a subscription whose destination is a function can only be
// created once the function exists, so azd's postdeploy hook deploys infra/subscriptions.bicep after the code.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names every resource and the resource group.')
param environmentName string

@minLength(1)
@description('Region for all resources (Flex Consumption and Azure ML must both be offered there).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person running azd: gets data access to the app storage for uploads. Empty to skip.')
param principalId string = ''

@description('The models file shipped with the app (MLOPS_CONFIG, e.g. mlops.yaml): several models, each with its own data, training and policies. Empty: the one model of the settings below.')
param modelsFile string = ''

@description('The model the chain keeps alive (MODEL_NAME).')
param modelName string = 'tabular-classifier'

@description('The label column of the training data (TARGET_COLUMN).')
param targetColumn string = 'label'

@description('The managed online endpoint the app adopts (ENDPOINT_NAME): created here with its diagnostic setting.')
param endpointName string = 'mlops-endpoint'

@description('With a models file: the other models\' endpoints (each model\'s `endpoint`), created the same way, so that each has its traffic logs for the canary judge and, in prod, may pull models from the registry.')
param modelEndpoints array = []

@description('A feature to check fairness on (SENSITIVE_COLUMN); empty for none.')
param sensitiveColumn string = ''

@description('What starts training on its own (RETRAIN_ON): any of data (a complete drop), schedule (the retrain timer), drift, performance (alerts), separated by commas; or never (only a forced retrain trains).')
param retrainOn string = 'data,schedule,drift,performance'

@description('Pinned Azure ML environments (name:version) and the training cluster; the infra creates them, the app only uses them.')
param trainingEnvironment string = 'mlops-training:1'
param inferenceEnvironment string = 'mlops-inference:1'
param monitoringEnvironment string = 'mlops-monitoring:1'
param jobCompute string = 'cpu-cluster'
@description('Rates per node-hour over the built-in list prices (COMPUTE_RATES), e.g. Standard_DS3_v2=0.293: your region\'s or your discount.')
param computeRates string = ''

// Three environments, each a deployment of this template with its own workspace (infra/environments/*.json),
// and one Azure ML registry they share (infra/registry.bicep, deployed first): preprod shares the models that
// passed it into the registry and tells prod on prod's custom topic; prod deploys them from the registry.
@description('The environment (MLOPS_STAGE): decides the data scientists\' access, the registry roles and promotion.')
@allowed([
  'dev'
  'preprod'
  'prod'
])
param stage string = 'dev'

@description('The shared Azure ML registry (AZUREML_REGISTRY), from infra/registry.bicep; empty for a lone environment without one.')
param registryName string = ''

@description('NOTIFY_WEBHOOKS: the webhooks each decision is posted to (`format=url`, format slack | teams | json); empty for none. Secret: the URLs carry their keys.')
@secure()
param notifyWebhooks string = ''

@description('The resource group of the shared registry (same subscription): this environment\'s grants on it are deployed there.')
param registryResourceGroup string = ''

@description('Object id of the data scientists\' Entra group: AzureML Data Scientist on the workspace in dev, Reader in preprod and prod. Empty to skip.')
param dataScientistsGroupId string = ''

@description('Preprod only: prod\'s custom topic endpoint (prod\'s EVENTGRID_TOPIC_ENDPOINT output), told of each model shared into the registry (PROMOTION_TOPIC_ENDPOINT).')
param promotionTopicEndpoint string = ''

@description('Whether a person approves a promoted model before its rollout starts (PROMOTION_APPROVAL).')
@allowed([
  'none'
  'required'
])
param promotionApproval string = 'none'

@description('Prod only: the principal id of preprod\'s function identity (preprod\'s FUNCTION_PRINCIPAL_ID output), which may then publish to this environment\'s custom topic. Empty for none.')
param promoterPrincipalId string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-func-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${take(resourceToken, 7)}'
  }
}

module ml 'modules/ml-workspace.bicep' = {
  name: 'ml-workspace'
  scope: rg
  params: {
    workspaceName: 'mlw-${resourceToken}'
    storageName: 'stml${resourceToken}'
    keyVaultName: 'kv-${resourceToken}'
    registryName: 'cr${resourceToken}'
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    appStorageName: storage.outputs.name
    dataContainer: storage.outputs.dataContainer
    feedbackContainer: storage.outputs.feedbackContainer
    computeName: jobCompute
    trainingEnvironment: trainingEnvironment
    inferenceEnvironment: inferenceEnvironment
    monitoringEnvironment: monitoringEnvironment
  }
}

module endpoint 'modules/online-endpoint.bicep' = {
  name: 'online-endpoint'
  scope: rg
  params: {
    workspaceName: ml.outputs.name
    endpointName: endpointName
    location: location
    tags: tags
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module modelEndpoint 'modules/online-endpoint.bicep' = [for name in modelEndpoints: {
  name: take('online-endpoint-${name}', 64)
  scope: rg
  params: {
    workspaceName: ml.outputs.name
    endpointName: name
    location: location
    tags: tags
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}]

module topics 'modules/event-topics.bicep' = {
  name: 'event-topics'
  scope: rg
  params: {
    location: location
    tags: tags
    storageName: storage.outputs.name
    workspaceName: ml.outputs.name
    lifecycleTopicName: 'evgt-${resourceToken}'
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: 'func-${resourceToken}'
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainer
    appInsightsName: monitoring.outputs.appInsightsName
    logAnalyticsCustomerId: monitoring.outputs.logAnalyticsCustomerId
    lifecycleTopicEndpoint: topics.outputs.lifecycleTopicEndpoint
    workspaceName: ml.outputs.name
    dataContainer: storage.outputs.dataContainer
    stateContainer: storage.outputs.stateContainer
    feedbackContainer: storage.outputs.feedbackContainer
    dataDatastore: ml.outputs.dataDatastore
    modelsFile: modelsFile
    modelName: modelName
    targetColumn: targetColumn
    endpointName: endpoint.outputs.name
    sensitiveColumn: sensitiveColumn
    retrainOn: retrainOn
    trainingEnvironment: trainingEnvironment
    inferenceEnvironment: inferenceEnvironment
    monitoringEnvironment: monitoringEnvironment
    jobCompute: ml.outputs.computeName
    computeVmSize: ml.outputs.computeVmSize
    computeMaxNodes: ml.outputs.computeMaxNodes
    computeIdleSeconds: ml.outputs.computeIdleSeconds
    computeRates: computeRates
    stage: stage
    registryName: registryName
    promotionTopicEndpoint: promotionTopicEndpoint
    promotionApproval: promotionApproval
    notifyWebhooks: notifyWebhooks
  }
}

// Least privilege for every identity, one place: lifecycle/adapters/azure_roles.py says why each is needed.
module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    stage: stage
    functionPrincipalId: identity.outputs.principalId
    computePrincipalId: ml.outputs.computePrincipalId
    storageTopicPrincipalId: topics.outputs.storageTopicPrincipalId
    workspaceTopicPrincipalId: topics.outputs.workspaceTopicPrincipalId
    lifecycleTopicPrincipalId: topics.outputs.lifecycleTopicPrincipalId
    deployerPrincipalId: principalId
    dataScientistsGroupId: dataScientistsGroupId
    promoterPrincipalId: promoterPrincipalId
    appStorageName: storage.outputs.name
    deadLetterContainer: storage.outputs.deadLetterContainer
    dataContainer: storage.outputs.dataContainer
    feedbackContainer: storage.outputs.feedbackContainer
    workspaceName: ml.outputs.name
    workspaceStorageName: ml.outputs.storageName
    registryName: ml.outputs.registryName
    lifecycleTopicName: topics.outputs.lifecycleTopicName
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// This environment's identities on the shared registry (in the registry's resource group): preprod's function
// shares models into it; prod's function deploys from it and prod's endpoint pulls the models.
module registryRoles 'modules/registry-roles.bicep' = if (!empty(registryName)) {
  name: take('registry-roles-${environmentName}', 64)
  scope: resourceGroup(registryResourceGroup)
  params: {
    stage: stage
    registryName: registryName
    functionPrincipalId: identity.outputs.principalId
    endpointPrincipalId: endpoint.outputs.principalId
    modelEndpointPrincipalIds: [for (name, i) in modelEndpoints: modelEndpoint[i].outputs.principalId]
  }
}

// Read by azd (azd env get-values) and by the postdeploy hook that creates the subscriptions.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZUREML_WORKSPACE string = ml.outputs.name
output ENDPOINT_NAME string = endpoint.outputs.name
output EVENTGRID_TOPIC_ENDPOINT string = topics.outputs.lifecycleTopicEndpoint
output STORAGE_SYSTEM_TOPIC_NAME string = topics.outputs.storageTopicName
output WORKSPACE_SYSTEM_TOPIC_NAME string = topics.outputs.workspaceTopicName
output LIFECYCLE_TOPIC_NAME string = topics.outputs.lifecycleTopicName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output DEAD_LETTER_CONTAINER string = storage.outputs.deadLetterContainer
output MLOPS_STAGE string = stage
output AZUREML_REGISTRY string = registryName
// Preprod's: given to prod's deployment as promoterPrincipalId.
output FUNCTION_PRINCIPAL_ID string = identity.outputs.principalId
