import { memoryAdapter } from '@openid-express/op';
import { happyFlows } from './support/flows-happy.js';
import { refusedFlows } from './support/flows-refused.js';
import { extensionFlows } from './support/flows-extensions.js';

const memory = async () => ({ store: memoryAdapter(), close: async () => undefined });

happyFlows('memory', memory);
refusedFlows('memory', memory);
extensionFlows('memory', memory);
