// One environment's grants on the shared Azure ML registry (deployed into the registry's resource group by
// that environment's main.bicep). Which stage an entry belongs to is part of it: dev never touches the
// registry, preprod shares models into it, prod deploys from it. lifecycle/adapters/azure_roles.py says why
// each is needed; tests/infra checks every entry there is granted here, stage by stage.
@allowed([
  'dev'
  'preprod'
  'prod'
])
param stage string
param registryName string
param functionPrincipalId string
param endpointPrincipalId string
@description('The other models\' endpoints (main.bicep modelEndpoints): in prod each pulls its models from the registry too.')
param modelEndpointPrincipalIds array = []

// Built-in role definition ids (the same in every tenant).
var azureMLRegistryUser = '1823dd4f-9b8c-4ab6-ab4e-7397a3684615'

resource sharedRegistry 'Microsoft.MachineLearningServices/registries@2024-10-01' existing = {
  name: registryName
}

// In prod the other models' endpoints pull their models from the registry too.
var modelEndpointGrants = [for principalId in modelEndpointPrincipalIds: {
  role: azureMLRegistryUser
  principalId: principalId
  stages: [
    'prod'
  ]
}]

var sharedRegistryGrants = filter(concat([
  {
    role: azureMLRegistryUser
    principalId: functionPrincipalId
    stages: [
      'preprod'
      'prod'
    ]
  }
  {
    role: azureMLRegistryUser
    principalId: endpointPrincipalId
    stages: [
      'prod'
    ]
  }
], modelEndpointGrants), grant => contains(grant.stages, stage))

resource sharedRegistryAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for grant in sharedRegistryGrants: {
  name: guid(sharedRegistry.id, grant.principalId, grant.role)
  scope: sharedRegistry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grant.role)
    principalId: grant.principalId
    principalType: 'ServicePrincipal'
  }
}]
