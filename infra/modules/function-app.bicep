// The Function App on the Flex Consumption plan (Python 3.11) with the user-assigned identity, identity-based
// host storage, and every app setting the app reads (lifecycle/settings.py and the timers' %SETTING%s).
// Local-only settings (connection strings, keys, the Azure ML stand-in) are deliberately absent:
// tests/infra/test_app_settings.py holds that list with the reasons.
param name string
param planName string
param location string
param tags object = {}
param identityId string
param identityClientId string
param storageName string
param deploymentContainerName string
param appInsightsName string
param logAnalyticsCustomerId string
param lifecycleTopicEndpoint string
param workspaceName string
param dataContainer string
param stateContainer string
param feedbackContainer string
param dataDatastore string
param modelsFile string
param modelName string
param targetColumn string
param endpointName string
param sensitiveColumn string
@description('What starts training on its own (RETRAIN_ON): any of data, schedule, drift, performance separated by commas, or never.')
param retrainOn string
param trainingEnvironment string
param inferenceEnvironment string
param monitoringEnvironment string
param jobCompute string
@description('The compute cluster\'s VM size, max nodes and idle seconds before scale-down (cost estimates and advice).')
param computeVmSize string
param computeMaxNodes int
param computeIdleSeconds int
@description('Rates per node-hour over the built-in list prices (COMPUTE_RATES), e.g. Standard_DS3_v2=0.293; empty = list prices.')
param computeRates string = ''

@description('dev, preprod or prod (MLOPS_STAGE).')
param stage string
@description('The shared Azure ML registry (AZUREML_REGISTRY): preprod shares promoted models into it, prod deploys from it.')
param registryName string
@description('Preprod: prod\'s custom topic (PROMOTION_TOPIC_ENDPOINT); empty elsewhere.')
param promotionTopicEndpoint string
@description('none or required (PROMOTION_APPROVAL).')
param promotionApproval string
@description('NOTIFY_WEBHOOKS: the webhooks each decision is posted to (`format=url`, format slack | teams | json, separated by commas or spaces). The URLs are secrets.')
@secure()
param notifyWebhooks string = ''

@description('Instances the app may scale out to; a few are plenty for an event-driven lifecycle.')
param maximumInstanceCount int = 40

@description('Memory per instance; the app is slim (the monitoring pass runs as an Azure ML job).')
param instanceMemoryMB int = 2048

// Azure-sensible timers (NCRONTAB, seconds first): the local example fires every few seconds.
param reconcileSchedule string = '0 */5 * * * *'
param monitorSchedule string = '0 0 * * * *'
param retrainSchedule string = '0 0 2 * * *'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption scales each function from zero; zone redundancy and always-ready instances are a cost choice for production
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

var appSettings = {
  // Host storage through the identity (Flex Consumption's own templates do the same, shared keys off).
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // DefaultAzureCredential picks the user-assigned identity by this client id.
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  MLOPS_PLATFORM: 'azure'
  DATA_CONTAINER: dataContainer
  STATE_CONTAINER: stateContainer
  FEEDBACK_CONTAINER: feedbackContainer
  // No EVENTGRID_TOPIC_KEY: the topic has local auth disabled; the app publishes with its identity.
  EVENTGRID_TOPIC_ENDPOINT: lifecycleTopicEndpoint
  AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  AZURE_RESOURCE_GROUP: resourceGroup().name
  AZUREML_WORKSPACE: workspaceName
  AZURE_LOCATION: location
  DATA_DATASTORE: dataDatastore
  LOG_ANALYTICS_WORKSPACE_ID: logAnalyticsCustomerId
  TRAINING_ENVIRONMENT: trainingEnvironment
  INFERENCE_ENVIRONMENT: inferenceEnvironment
  MONITORING_ENVIRONMENT: monitoringEnvironment
  JOB_COMPUTE: jobCompute
  COMPUTE_VM_SIZE: computeVmSize
  COMPUTE_MIN_NODES: '0'
  COMPUTE_MAX_NODES: string(computeMaxNodes)
  COMPUTE_IDLE_SECONDS: string(computeIdleSeconds)
  COMPUTE_RATES: computeRates
  COMPUTE_CURRENCY: 'USD'
  TRAINING_SLOWDOWN_FACTOR: '2'
  MLOPS_CONFIG: modelsFile
  MODEL_NAME: modelName
  TARGET_COLUMN: targetColumn
  ENDPOINT_NAME: endpointName
  RETRAIN_SCHEDULE: retrainSchedule
  RECONCILE_SCHEDULE: reconcileSchedule
  MONITOR_SCHEDULE: monitorSchedule
  DROP_QUIET_SECONDS: '60'
  RETRAIN_COOLDOWN_MINUTES: '60'
  RETRAIN_ON: retrainOn
  TRAINING_WINDOW: 'all'
  GATE_METRIC: 'f1'
  GATE_FLOOR: '0.6'
  GATE_MARGIN: '0.02'
  GATE_LEAK_SCORE: '0.99'
  GATE_LEAK_FEATURE_SCORE: '0.95'
  // Bake times allow for Azure: traffic changes are eventually consistent, logs arrive minutes late,
  // and a scale-out can take 12-18 minutes.
  ROLLOUT_STEPS: '10,50,100'
  ROLLOUT_BAKE_SECONDS: '900'
  ROLLOUT_MIN_REQUESTS: '100'
  ROLLOUT_MIRROR_PERCENT: '0'
  ROLLOUT_MIRROR_SECONDS: '900'
  ROLLOUT_MAX_STEP_SECONDS: '7200'
  ROLLOUT_RETENTION_SECONDS: '3600'
  ROLLOUT_ON_NEW_MODEL: 'wait'
  SMOKE_ROWS: '20'
  SMOKE_MAX_LATENCY_MS: '2000'
  MONITOR_WINDOW_MINUTES: '60'
  MONITOR_MIN_ROWS: '500'
  MONITOR_MIN_LABELS: '100'
  DRIFT_THRESHOLDS: ''
  SENSITIVE_COLUMN: sensitiveColumn
  ALERT_COOLDOWN_MINUTES: '60'
  // Environments: dev -> preprod -> prod through the shared registry. No PROMOTION_TOPIC_KEY: prod's topic has
  // local auth disabled; preprod's identity publishes to it (EventGrid Data Sender, granted by prod).
  MLOPS_STAGE: stage
  AZUREML_REGISTRY: registryName
  PROMOTION_TOPIC_ENDPOINT: promotionTopicEndpoint
  PROMOTION_APPROVAL: promotionApproval
  // Notifications (functions/notify_triggers.py): empty = none. A secure parameter, never in the outputs.
  NOTIFY_WEBHOOKS: notifyWebhooks
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: public endpoint by design: no VNet in this template; every caller authenticates with Entra ID (shared keys and local auth off, TLS 1.2) and Azure services reach it as trusted services; a private-network variant needs private endpoints and VNet integration
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales each function from zero; zone redundancy and always-ready instances are a cost choice for production
  // checkov:skip=CKV_AZURE_17: client certificates would stop Azure Monitor's action group; HTTP functions require function keys
  // checkov:skip=CKV_AZURE_213: health check is for load-balanced web apps; this app is driven by Event Grid and timers, and Flex Consumption does not use it
  name: name
  location: location
  // azd deploys the service named 'api' in azure.yaml to the site carrying this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertMode: 'Optional'
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }

  resource settings 'config' = {
    // checkov:skip=CKV_AZURE_66: checkov takes this appsettings resource for the site's web config; the check is about web config, not app settings
    // checkov:skip=CKV_AZURE_63: checkov takes this appsettings resource for the site's web config; the check is about web config, not app settings
    // checkov:skip=CKV_AZURE_65: checkov takes this appsettings resource for the site's web config; the check is about web config, not app settings
    // checkov:skip=CKV_AZURE_80: checkov takes this appsettings resource for the site's web config; the check is about web config, not app settings
    // checkov:skip=CKV_AZURE_88: checkov takes this appsettings resource for the site's web config; the check is about web config, not app settings
    // checkov:skip=CKV_AZURE_13: checkov takes this appsettings resource for the site's web config; the check is about web config, not app settings
    // checkov:skip=CKV_AZURE_222: public endpoint by design: no VNet in this template; every caller authenticates with Entra ID (shared keys and local auth off, TLS 1.2) and Azure services reach it as trusted services; a private-network variant needs private endpoints and VNet integration
    name: 'appsettings'
    properties: appSettings
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
