import { memoryAdapter } from '@openid-express/op';
import { happyFlows } from './support/flows-happy.js';
import { refusedFlows } from './support/flows-refused.js';

const memory = async () => ({ store: memoryAdapter(), close: async () => undefined });

happyFlows('memory', memory);
refusedFlows('memory', memory);
