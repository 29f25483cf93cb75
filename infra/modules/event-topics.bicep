// The three sources of the routing table (infra/event-subscriptions.json "topics"): the storage account's and
// the Azure ML workspace's system topics, and the custom topic the app publishes MLOps.* events to. Each
// has a system-assigned identity so that dead letters are written with Entra ID (no storage key).
param location string
param tags object = {}
param storageName string
param workspaceName string
param lifecycleTopicName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource storageTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${storageName}-events'
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource workspaceTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${workspaceName}-events'
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

// Keys off: the app publishes with its identity (EventGrid Data Sender on this topic).
resource lifecycleTopic 'Microsoft.EventGrid/topics@2022-06-15' = {
  // checkov:skip=CKV_AZURE_193: public endpoint by design: no VNet in this template; every caller authenticates with Entra ID (shared keys and local auth off, TLS 1.2) and Azure services reach it as trusted services; a private-network variant needs private endpoints and VNet integration
  name: lifecycleTopicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'EventGridSchema'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

output storageTopicName string = storageTopic.name
output storageTopicPrincipalId string = storageTopic.identity.principalId
output workspaceTopicName string = workspaceTopic.name
output workspaceTopicPrincipalId string = workspaceTopic.identity.principalId
output lifecycleTopicName string = lifecycleTopic.name
output lifecycleTopicEndpoint string = lifecycleTopic.properties.endpoint
output lifecycleTopicPrincipalId string = lifecycleTopic.identity.principalId
