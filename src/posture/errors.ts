/**
 * Named errors of the posture module.
 *
 * @module
 */

import { AgentnetError } from '../errors/index.ts'

/** The baseline cannot be encoded or read as a baseline */
export class MalformedBaselineError extends AgentnetError { override readonly code = 'MalformedBaseline' }
