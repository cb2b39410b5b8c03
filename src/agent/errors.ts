import { AgentnetError } from '../errors/index.ts'

/** The service refuses inbound messages whose screening found something (`guard.inbound.refuse`) */
export class InboundRefusedError extends AgentnetError { override readonly code = 'InboundRefused' }
