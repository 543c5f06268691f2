/** The services framework as its hosts run it (lib/frameworks/host/built-in.ts). */
import type { BuiltInFramework } from '../host/built-in.ts';
import {
  appsChangedMessage,
  handleServicesMessage,
  SERVICES_FRAMEWORK_ID,
  servicesQueueName,
  servicesTick,
} from './framework.ts';
import { DynamoServicesStore, SERVICES_TABLE, type ServicesStore } from './store.ts';

export const SERVICES: BuiltInFramework<ServicesStore> = {
  frameworkId: SERVICES_FRAMEWORK_ID,
  name: 'services',
  table: SERVICES_TABLE,
  queueName: servicesQueueName,
  openStore: (doc, table) => new DynamoServicesStore(doc, table),
  handle: handleServicesMessage,
  tick: servicesTick,
  changedMessage: appsChangedMessage,
};
