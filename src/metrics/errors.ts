import { AgentnetError } from '../errors/index.ts'

/** `agentnet metrics` / `node.prometheus` on a node whose `metrics.listen` is empty */
export class MetricsDisabledError extends AgentnetError { override readonly code = 'MetricsDisabled' }
