export {};
export { memoryAdapter, type MemoryAdapterOptions, type MemoryOpStore } from './adapters/memory.js';
export type { OpStore } from './adapters/types.js';
