// The one Azure ML registry that dev, preprod and prod share, in a resource group of its own: preprod shares
// the models that passed it into the registry, prod deploys them from there. Deployed once, before the
// environments (each environment is a deployment of main.bicep naming this registry):
//   az deployment sub create --name mlops-registry --location <region> --template-file infra/registry.bicep \
//     --parameters infra/environments/registry.parameters.json
// Roles on the registry are not granted here: each environment's deployment grants its own identities what
// they need on it (modules/registry-roles.bicep), so the registry never has to know the environments.
targetScope = 'subscription'

@minLength(3)
@maxLength(33)
@description('Name of the Azure ML registry (AZUREML_REGISTRY in the environments): a letter or digit, then letters, digits, hyphens or underscores.')
param registryName string

@minLength(1)
@maxLength(90)
@description('The resource group the registry lives in, shared by the environments (their registryResourceGroup).')
param resourceGroupName string

@minLength(1)
@description('The registry\'s regions, its primary first: every region an environment\'s workspace is in, so that models are replicated next to the endpoints that serve them.')
param regions array

@description('Tags on the resource group and the registry.')
param tags object = {}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: regions[0]
  tags: tags
}

module registry 'modules/ml-registry.bicep' = {
  name: 'ml-registry'
  scope: rg
  params: {
    name: registryName
    regions: regions
    tags: tags
  }
}

output AZUREML_REGISTRY string = registry.outputs.name
output AZUREML_REGISTRY_RESOURCE_GROUP string = rg.name
output AZUREML_REGISTRY_ID string = registry.outputs.id
