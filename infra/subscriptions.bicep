// The Event Grid subscriptions, generated from the one routing table (infra/event-subscriptions.json, which
// the local Event Grid reads too), and the action group that posts Azure Monitor alerts to the `alerts`
// function. Deployed by azd's postdeploy hook (infra/hooks/postdeploy.sh): a subscription whose destination is
// a function can only be created once the function exists, that is after the code is deployed.
targetScope = 'resourceGroup'

param functionAppName string
param storageAccountName string
param storageTopicName string
param workspaceTopicName string
param lifecycleTopicName string
param deadLetterContainer string = 'deadletter'

@description('Name of the HTTP function that takes Azure Monitor alerts in the common alert schema.')
param alertFunctionName string = 'azure_monitor_alert'

var routing = loadJsonContent('event-subscriptions.json')

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

// routing.topics: storage -> the storage account's system topic, mlworkspace -> the workspace's system topic,
// lifecycle -> the custom topic.
resource storageTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: storageTopicName
}

resource workspaceTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: workspaceTopicName
}

resource lifecycleTopic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: lifecycleTopicName
}

// One body for every subscription: the routing table's fields mapped one to one onto Event Grid's.
resource storageSubscriptions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = [for s in filter(routing.subscriptions, x => x.topic == 'storage'): {
  parent: storageTopic
  name: s.name
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${site.id}/functions/${s.function}'
        maxEventsPerBatch: 1
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: s.filter.includedEventTypes
      subjectBeginsWith: s.filter.?subjectBeginsWith ?? ''
      subjectEndsWith: s.filter.?subjectEndsWith ?? ''
      advancedFilters: s.filter.?advancedFilters ?? []
    }
    retryPolicy: {
      maxDeliveryAttempts: s.retryPolicy.maxDeliveryAttempts
      eventTimeToLiveInMinutes: s.retryPolicy.eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: s.deadLetter.container
        }
      }
    }
  }
}]

resource workspaceSubscriptions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = [for s in filter(routing.subscriptions, x => x.topic == 'mlworkspace'): {
  parent: workspaceTopic
  name: s.name
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${site.id}/functions/${s.function}'
        maxEventsPerBatch: 1
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: s.filter.includedEventTypes
      subjectBeginsWith: s.filter.?subjectBeginsWith ?? ''
      subjectEndsWith: s.filter.?subjectEndsWith ?? ''
      advancedFilters: s.filter.?advancedFilters ?? []
    }
    retryPolicy: {
      maxDeliveryAttempts: s.retryPolicy.maxDeliveryAttempts
      eventTimeToLiveInMinutes: s.retryPolicy.eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: s.deadLetter.container
        }
      }
    }
  }
}]

resource lifecycleSubscriptions 'Microsoft.EventGrid/topics/eventSubscriptions@2022-06-15' = [for s in filter(routing.subscriptions, x => x.topic == 'lifecycle'): {
  parent: lifecycleTopic
  name: s.name
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${site.id}/functions/${s.function}'
        maxEventsPerBatch: 1
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: s.filter.includedEventTypes
      subjectBeginsWith: s.filter.?subjectBeginsWith ?? ''
      subjectEndsWith: s.filter.?subjectEndsWith ?? ''
      advancedFilters: s.filter.?advancedFilters ?? []
    }
    retryPolicy: {
      maxDeliveryAttempts: s.retryPolicy.maxDeliveryAttempts
      eventTimeToLiveInMinutes: s.retryPolicy.eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: s.deadLetter.container
        }
      }
    }
  }
}]

// Azure Monitor alerts (e.g. a metric alert on the endpoint's latency) reach the app over HTTP in the
// common alert schema. The function's key is read at deployment time and kept in the action group only.
resource alertsToFunction 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${functionAppName}'
  location: 'global'
  properties: {
    groupShortName: 'mlopsalert'
    enabled: true
    azureFunctionReceivers: [
      {
        name: 'alerts-function'
        functionAppResourceId: site.id
        functionName: alertFunctionName
        httpTriggerUrl: 'https://${site.properties.defaultHostName}/api/alerts?code=${listKeys('${site.id}/functions/${alertFunctionName}', '2024-04-01').default}'
        useCommonAlertSchema: true
      }
    ]
  }
}

output actionGroupId string = alertsToFunction.id
