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

// People told of each decision through Azure Monitor (e-mail, SMS). Event Grid cannot deliver a custom topic's
// events to an action group: its Azure Monitor alert destination (endpointType MonitorAlert) takes only some
// system topics' events (Key Vault, Health Resources). So the notify function logs each decision once
// ("mlops-decision: ..." in Application Insights) and a log search alert rule over those lines fires the group,
// one alert per decision (the line is the alert's dimension). Without a group or receivers nothing is created.
@description('An existing action group to tell of each decision (its resource id); empty to create one from the receivers below, or for none.')
param notifyActionGroupId string = ''

@description('E-mail addresses for an action group created here, separated by commas; empty for none.')
param notifyEmails string = ''

@description('SMS receivers for that group: countryCode-phoneNumber, separated by commas (e.g. 1-5555551234); empty for none.')
param notifySms string = ''

@description('The function app\'s Application Insights, where the notify function logs each decision.')
param appInsightsName string = ''

@description('Severity of a decision\'s alert (0 critical .. 4 verbose).')
@allowed([
  0
  1
  2
  3
  4
])
param notifySeverity int = 3

param location string = resourceGroup().location

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

var emails = filter(split(notifyEmails, ','), e => !empty(trim(e)))
var phones = filter(split(notifySms, ','), e => !empty(trim(e)))
var createPeopleGroup = empty(notifyActionGroupId) && (!empty(emails) || !empty(phones))
var peopleGroupName = 'ag-${functionAppName}-people'
var peopleGroupIds = !empty(notifyActionGroupId) ? [
  notifyActionGroupId
] : createPeopleGroup ? [
  resourceId('Microsoft.Insights/actionGroups', peopleGroupName)
] : []

resource peopleGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (createPeopleGroup) {
  name: peopleGroupName
  location: 'global'
  properties: {
    groupShortName: 'mlopspeople'
    enabled: true
    emailReceivers: [for (address, i) in emails: {
      name: 'email-${i}'
      emailAddress: trim(address)
      useCommonAlertSchema: true
    }]
    smsReceivers: [for (phone, i) in phones: {
      name: 'sms-${i}'
      countryCode: split(trim(phone), '-')[0]
      phoneNumber: split(trim(phone), '-')[1]
    }]
  }
}

// One alert per decision the notify function logged in the last five minutes, the decision's sentence as the
// alert's dimension (shown in the e-mail and the SMS). Not auto-resolved: a decision is told, not a condition.
resource decisionsToPeople 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = if (!empty(peopleGroupIds) && !empty(appInsightsName)) {
  name: 'mlops-decisions-${functionAppName}'
  location: location
  dependsOn: [
    peopleGroup
  ]
  properties: {
    displayName: 'MLOps decisions of ${functionAppName}'
    description: 'Each decision of the lifecycle (an MLOps.* event) as the notify function logged it once.'
    severity: notifySeverity
    enabled: true
    scopes: [
      resourceId('Microsoft.Insights/components', appInsightsName)
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'traces | where message startswith "mlops-decision: " | extend decision = substring(message, 16, 250)'
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'decision'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: peopleGroupIds
    }
  }
}

output peopleActionGroupIds array = peopleGroupIds
