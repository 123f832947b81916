export { agentError } from './errors.js';
export { REGISTRY_TOOLS, selfFromEnv, type RegistryTool, type Self, type ToolContext, type ToolResult } from './registry-tools.js';
