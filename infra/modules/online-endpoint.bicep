// The managed online endpoint the app adopts (it creates only the deployments), with the diagnostic setting
// that makes AmlOnlineEndpointTrafficLog exist: without it the canary judge has no traffic logs to read.
param workspaceName string
param endpointName string
param location string
param tags object = {}
param logAnalyticsId string

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource endpoint 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-10-01' = {
  parent: workspace
  name: endpointName
  location: location
  tags: tags
  kind: 'Managed'
  // Azure ML grants this identity what the deployments need (image pull, model files, data collector).
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    authMode: 'Key'
    publicNetworkAccess: 'Enabled'
    description: 'Kept alive by the MLOps function app (blue/green deployments, canary, data collection)'
  }
}

resource endpointLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'traffic-to-log-analytics'
  scope: endpoint
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        category: 'AmlOnlineEndpointTrafficLog'
        enabled: true
      }
      {
        category: 'AmlOnlineEndpointConsoleLog'
        enabled: true
      }
      {
        category: 'AmlOnlineEndpointEventLog'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output name string = endpoint.name
output id string = endpoint.id
// In prod this identity pulls the models from the shared registry (modules/registry-roles.bicep).
output principalId string = endpoint.identity.principalId
