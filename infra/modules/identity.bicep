// The Function App's user-assigned identity: host storage, Azure ML, Event Grid and Azure Monitor all
// authenticate with it (AzureWebJobsStorage__clientId and AZURE_CLIENT_ID hold its client id).
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
