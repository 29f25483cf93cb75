// The Azure ML workspace and what the app takes for granted in it: the compute cluster jobs run on, the
// datastores over the app's data and feedback containers, and the pinned environments (the app never
// registers an environment version per rollout: it uses TRAINING_/INFERENCE_/MONITORING_ENVIRONMENT).
param workspaceName string
param storageName string
param keyVaultName string
param registryName string
param location string
param tags object = {}
param appInsightsId string
param appStorageName string
param dataContainer string
param feedbackContainer string
param computeName string
param trainingEnvironment string
param inferenceEnvironment string
param monitoringEnvironment string

@description('VM size of the training and monitoring cluster.')
param computeVmSize string = 'Standard_DS3_v2'

@description('Most nodes the cluster scales out to (it scales to 0 when idle).')
param computeMaxNodes int = 2
@description('Seconds an idle node stays up before the cluster scales it down.')
param computeIdleSeconds int = 120

var baseImage = 'mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest'
// name:version -> the conda spec each environment is built from (the spec files stay the truth).
var environments = [
  {
    ref: trainingEnvironment
    description: 'Training jobs (training/train.py)'
    condaFile: loadTextContent('../../training/environment/conda.yml')
  }
  {
    ref: inferenceEnvironment
    description: 'Online deployments (deployment/score.py)'
    condaFile: loadTextContent('../../deployment/environment/conda.yml')
  }
  {
    ref: monitoringEnvironment
    description: 'Monitoring jobs (monitoring/job.yml)'
    condaFile: loadTextContent('../../monitoring/environment/conda.yml')
  }
]

// The workspace's own storage. Its datastores are reached with identities (systemDatastoresAuthMode
// below), so shared keys are off here too.
resource workspaceStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: public endpoint by design: no VNet in this template; every caller authenticates with Entra ID (shared keys and local auth off, TLS 1.2) and Azure services reach it as trusted services; a private-network variant needs private endpoints and VNet integration
  // checkov:skip=CKV_AZURE_206: LRS keeps cost low and the data is re-creatable from its source; pick ZRS or GRS for production in the sku
  // checkov:skip=CKV_AZURE_43: the name is 'stml' and a lower-case uniqueString made in main.bicep (3-24 lower-case letters and digits); checkov judges the parameter's identifier
  name: storageName
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
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_110: the vault is Azure ML's (it holds no secret of this app) and purge protection would stop `azd down --purge` and keep the environment's vault name taken for the retention period
  // checkov:skip=CKV_AZURE_42: the vault is Azure ML's (it holds no secret of this app) and purge protection would stop `azd down --purge` and keep the environment's vault name taken for the retention period
  // checkov:skip=CKV_AZURE_109: public endpoint by design: no VNet in this template; every caller authenticates with Entra ID (shared keys and local auth off, TLS 1.2) and Azure services reach it as trusted services; a private-network variant needs private endpoints and VNet integration
  // checkov:skip=CKV_AZURE_189: public endpoint by design: no VNet in this template; every caller authenticates with Entra ID (shared keys and local auth off, TLS 1.2) and Azure services reach it as trusted services; a private-network variant needs private endpoints and VNet integration
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// Holds the images Azure ML builds from the environments; pulled with identities (no admin user).
resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_139: public endpoint by design: no VNet in this template; every caller authenticates with Entra ID (shared keys and local auth off, TLS 1.2) and Azure services reach it as trusted services; a private-network variant needs private endpoints and VNet integration
  // checkov:skip=CKV_AZURE_166: image quarantine needs the Premium tier; Azure ML builds the only images here from the pinned conda specs in the repo
  // checkov:skip=CKV_AZURE_163: vulnerability scanning is Defender for Containers, a subscription-level paid plan; enable it for production
  name: registryName
  location: location
  tags: tags
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' = {
  // checkov:skip=CKV_AZURE_243: public endpoint by design: no VNet in this template; every caller authenticates with Entra ID (shared keys and local auth off, TLS 1.2) and Azure services reach it as trusted services; a private-network variant needs private endpoints and VNet integration
  name: workspaceName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    friendlyName: workspaceName
    storageAccount: workspaceStorage.id
    keyVault: keyVault.id
    applicationInsights: appInsightsId
    containerRegistry: registry.id
    systemDatastoresAuthMode: 'identity'
    publicNetworkAccess: 'Enabled'
    v1LegacyMode: false
  }
}

// Jobs run here; min 0 nodes so an idle cluster costs nothing. Its identity reads the data and writes
// job outputs (roles in modules/roles.bicep).
resource compute 'Microsoft.MachineLearningServices/workspaces/computes@2024-10-01' = {
  parent: workspace
  name: computeName
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    computeType: 'AmlCompute'
    disableLocalAuth: true
    properties: {
      vmSize: computeVmSize
      vmPriority: 'Dedicated'
      osType: 'Linux'
      remoteLoginPortPublicAccess: 'Disabled'
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: computeMaxNodes
        nodeIdleTimeBeforeScaleDown: 'PT${computeIdleSeconds}S'
      }
    }
  }
}

// Identity-based datastores (no credentials stored): the caller's or the compute's identity reads them.
resource dataDatastore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-10-01' = {
  parent: workspace
  name: 'mlopsdata'
  properties: {
    datastoreType: 'AzureBlob'
    accountName: appStorageName
    containerName: dataContainer
    endpoint: environment().suffixes.storage
    protocol: 'https'
    credentials: {
      credentialsType: 'None'
    }
    description: 'The app storage account\'s data container (training data)'
  }
}

resource feedbackDatastore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-10-01' = {
  parent: workspace
  name: 'mlopsfeedback'
  properties: {
    datastoreType: 'AzureBlob'
    accountName: appStorageName
    containerName: feedbackContainer
    endpoint: environment().suffixes.storage
    protocol: 'https'
    credentials: {
      credentialsType: 'None'
    }
    description: 'The app storage account\'s feedback container (ground truth labels)'
  }
}

resource environmentContainers 'Microsoft.MachineLearningServices/workspaces/environments@2024-10-01' = [for env in environments: {
  parent: workspace
  name: split(env.ref, ':')[0]
  properties: {
    description: env.description
  }
}]

resource environmentVersions 'Microsoft.MachineLearningServices/workspaces/environments/versions@2024-10-01' = [for (env, i) in environments: {
  parent: environmentContainers[i]
  name: split(env.ref, ':')[1]
  properties: {
    image: baseImage
    condaFile: env.condaFile
    osType: 'Linux'
    description: env.description
  }
}]

output name string = workspace.name
output id string = workspace.id
output storageName string = workspaceStorage.name
output registryName string = registry.name
output computeName string = compute.name
// the cluster's size and scale settings, for the app's cost estimates and cluster advice
output computeVmSize string = computeVmSize
output computeMaxNodes int = computeMaxNodes
output computeIdleSeconds int = computeIdleSeconds
output computePrincipalId string = compute.identity.principalId
output dataDatastore string = dataDatastore.name
output feedbackDatastore string = feedbackDatastore.name
