// Log Analytics (the endpoint's traffic logs land here; the canary judge reads them) and Application
// Insights for the Function App, ingesting with Entra ID only (no instrumentation key accepted).
param logAnalyticsName string
param appInsightsName string
param location string
param tags object = {}

@description('Days the logs are kept; 30 is the free retention.')
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output logAnalyticsId string = logAnalytics.id
output logAnalyticsName string = logAnalytics.name
// LOG_ANALYTICS_WORKSPACE_ID is the workspace's customer id (a GUID), which LogsQueryClient queries.
output logAnalyticsCustomerId string = logAnalytics.properties.customerId
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
