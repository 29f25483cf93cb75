// Role assignments, least privilege: one list per scope, each entry a built-in role for one identity.
// lifecycle/adapters/azure_roles.py declares what each identity needs and why; tests/infra checks every
// entry there is granted here.
@description('The environment: which of the stage-dependent grants below apply.')
@allowed([
  'dev'
  'preprod'
  'prod'
])
param stage string = 'dev'
param functionPrincipalId string
param computePrincipalId string
param storageTopicPrincipalId string
param workspaceTopicPrincipalId string
param lifecycleTopicPrincipalId string
@description('The person running azd (may be empty): data access to upload training data and labels.')
param deployerPrincipalId string = ''
@description('Object id of the data scientists\' Entra group (may be empty): their access to the workspace, by stage.')
param dataScientistsGroupId string = ''
@description('Prod only: preprod\'s function identity (may be empty), which tells prod of each model it shared.')
param promoterPrincipalId string = ''
param appStorageName string
param deadLetterContainer string
param dataContainer string
param feedbackContainer string
param workspaceName string
param workspaceStorageName string
param registryName string
param lifecycleTopicName string
param logAnalyticsName string
param appInsightsName string

// Built-in role definition ids (the same in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var azureMLDataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'
var logAnalyticsReader = '73c42c96-874c-492b-b04d-ab87d138a893'
var monitoringReader = '43d0d8ad-25c7-4714-9337-8ba259a9fe05'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'
var reader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

resource appStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: appStorageName
}

resource appBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: appStorage
  name: 'default'
}

resource deadLetters 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: appBlobs
  name: deadLetterContainer
}

resource data 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: appBlobs
  name: dataContainer
}

resource feedback 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: appBlobs
  name: feedbackContainer
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource workspaceStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: workspaceStorageName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource lifecycleTopic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: lifecycleTopicName
}

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

var appStorageGrants = [
  {
    role: storageBlobDataOwner
    principalId: functionPrincipalId
  }
  {
    role: storageQueueDataContributor
    principalId: functionPrincipalId
  }
  {
    role: storageTableDataContributor
    principalId: functionPrincipalId
  }
]

var deadLetterGrants = [
  {
    role: storageBlobDataContributor
    principalId: storageTopicPrincipalId
  }
  {
    role: storageBlobDataContributor
    principalId: workspaceTopicPrincipalId
  }
  {
    role: storageBlobDataContributor
    principalId: lifecycleTopicPrincipalId
  }
]

var dataGrants = [
  {
    role: storageBlobDataReader
    principalId: computePrincipalId
  }
]

var feedbackGrants = [
  {
    role: storageBlobDataReader
    principalId: computePrincipalId
  }
]

var workspaceGrants = [
  {
    role: azureMLDataScientist
    principalId: functionPrincipalId
  }
  {
    role: monitoringReader
    principalId: functionPrincipalId
  }
]

var workspaceStorageGrants = [
  {
    role: storageBlobDataReader
    principalId: functionPrincipalId
  }
  {
    role: storageBlobDataContributor
    principalId: computePrincipalId
  }
]

var registryGrants = [
  {
    role: acrPull
    principalId: computePrincipalId
  }
]

var lifecycleTopicGrants = [
  {
    role: eventGridDataSender
    principalId: functionPrincipalId
  }
]

var logAnalyticsGrants = [
  {
    role: logAnalyticsReader
    principalId: functionPrincipalId
  }
]

var appInsightsGrants = [
  {
    role: monitoringMetricsPublisher
    principalId: functionPrincipalId
  }
]

// Grants that depend on the environment: each entry says the stages it belongs to, and an entry for a
// principal left empty is skipped.
// The data scientists' group builds in dev; in preprod and prod the jobs, models and endpoints are the
// lifecycle's, and they only look.
var dataScientistGrants = filter([
  {
    role: azureMLDataScientist
    principalId: dataScientistsGroupId
    stages: [
      'dev'
    ]
  }
  {
    role: reader
    principalId: dataScientistsGroupId
    stages: [
      'preprod'
      'prod'
    ]
  }
], grant => contains(grant.stages, stage) && !empty(grant.principalId))

// Preprod's function identity publishes to prod's custom topic (the model it shared into the registry).
var promoterGrants = filter([
  {
    role: eventGridDataSender
    principalId: promoterPrincipalId
    stages: [
      'prod'
    ]
  }
], grant => contains(grant.stages, stage) && !empty(grant.principalId))

resource appStorageAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in appStorageGrants: {
  name: guid(appStorage.id, grant.principalId, grant.role)
  scope: appStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource deadLetterAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in deadLetterGrants: {
  name: guid(deadLetters.id, grant.principalId, grant.role)
  scope: deadLetters
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource dataAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in dataGrants: {
  name: guid(data.id, grant.principalId, grant.role)
  scope: data
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource feedbackAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in feedbackGrants: {
  name: guid(feedback.id, grant.principalId, grant.role)
  scope: feedback
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource workspaceAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in workspaceGrants: {
  name: guid(workspace.id, grant.principalId, grant.role)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource workspaceStorageAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in workspaceStorageGrants: {
  name: guid(workspaceStorage.id, grant.principalId, grant.role)
  scope: workspaceStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource registryAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in registryGrants: {
  name: guid(registry.id, grant.principalId, grant.role)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource lifecycleTopicAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in lifecycleTopicGrants: {
  name: guid(lifecycleTopic.id, grant.principalId, grant.role)
  scope: lifecycleTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource logAnalyticsAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in logAnalyticsGrants: {
  name: guid(logAnalytics.id, grant.principalId, grant.role)
  scope: logAnalytics
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource appInsightsAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in appInsightsGrants: {
  name: guid(appInsights.id, grant.principalId, grant.role)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource dataScientistAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in dataScientistGrants: {
  name: guid(workspace.id, grant.principalId, grant.role)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'Group'
  }
}]

resource promoterAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in promoterGrants: {
  name: guid(lifecycleTopic.id, grant.principalId, grant.role)
  scope: lifecycleTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]

// The person running azd can drop training data and labels (not part of the app's needs).
resource deployerData 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(data.id, deployerPrincipalId, storageBlobDataContributor)
  scope: data
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: deployerPrincipalId
    principalType: 'User'
  }
}

resource deployerFeedback 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(feedback.id, deployerPrincipalId, storageBlobDataContributor)
  scope: feedback
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: deployerPrincipalId
    principalType: 'User'
  }
}
