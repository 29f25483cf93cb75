// An Azure ML registry: models (and environments, components) shared between workspaces, replicated to every
// region it lists. Azure ML creates its storage account and container registry in a managed resource group
// of its own, one per region here; the registry reaches them with its system-assigned identity.
param name string
param regions array
param tags object = {}

resource registry 'Microsoft.MachineLearningServices/registries@2024-10-01' = {
  name: name
  location: regions[0]
  tags: tags
  kind: 'registry'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    // Public endpoint like the workspaces (no VNet in these templates): every caller authenticates with Entra
    // ID and holds AzureML Registry User on it (modules/registry-roles.bicep).
    publicNetworkAccess: 'Enabled'
    regionDetails: [for region in regions: {
      location: region
      storageAccountDetails: [
        {
          systemCreatedStorageAccount: {
            storageAccountType: 'Standard_LRS'
            storageAccountHnsEnabled: false
            allowBlobPublicAccess: false
          }
        }
      ]
      acrDetails: [
        {
          systemCreatedAcrAccount: {
            // Premium: the registry's one container registry is geo-replicated to each of its regions.
            acrAccountSku: 'Premium'
          }
        }
      ]
    }]
  }
}

output name string = registry.name
output id string = registry.id
