// The app's storage account: host storage of the Function App (blob, queue, table), its deployment
// package, and the lifecycle's containers. Shared keys are off: every client uses Entra ID.
param name string
param location string
param tags object = {}
param deploymentContainerName string

var dataContainer = 'data'
var feedbackContainer = 'feedback'
var stateContainer = 'mlops-state'
var deadLetterContainer = 'deadletter'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: public endpoint by design: no VNet in this template; every caller authenticates with Entra ID (shared keys and local auth off, TLS 1.2) and Azure services reach it as trusted services; a private-network variant needs private endpoints and VNet integration
  // checkov:skip=CKV_AZURE_59: public endpoint by design: no VNet in this template; every caller authenticates with Entra ID (shared keys and local auth off, TLS 1.2) and Azure services reach it as trusted services; a private-network variant needs private endpoints and VNet integration
  // checkov:skip=CKV_AZURE_206: LRS keeps cost low and the data is re-creatable from its source; pick ZRS or GRS for production in the sku
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // Event Grid and Azure ML reach the account as trusted services; the Function App (no VNet on
      // this plan's default setup) and people reach it over the public endpoint with Entra ID.
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in [
  dataContainer
  feedbackContainer
  stateContainer
  deadLetterContainer
  deploymentContainerName
]: {
  parent: blobs
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output dataContainer string = dataContainer
output feedbackContainer string = feedbackContainer
output stateContainer string = stateContainer
output deadLetterContainer string = deadLetterContainer
output deploymentContainer string = deploymentContainerName
