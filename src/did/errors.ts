/**
 * Named errors of the identity-interop module.
 *
 * @module
 */

import { AgentnetError } from '../errors/index.ts'

export class InvalidDidError extends AgentnetError { override readonly code = 'InvalidDid' }

export class InvalidAgentCardError extends AgentnetError { override readonly code = 'InvalidAgentCard' }
