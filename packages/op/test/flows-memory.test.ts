import { memoryAdapter } from '@openid-express/op';
import { happyFlows } from './support/flows-happy.js';

const memory = async () => ({ store: memoryAdapter(), close: async () => undefined });

happyFlows('memory', memory);
