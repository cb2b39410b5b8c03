/**
 * Named errors of the identity-interop module, each with a stable `code`.
 *
 * @module
 */

export class InvalidDidError extends Error {
  static readonly code = 'InvalidDid'
  readonly code = 'InvalidDid'
  override name = 'InvalidDidError'
}

export class InvalidAgentCardError extends Error {
  static readonly code = 'InvalidAgentCard'
  readonly code = 'InvalidAgentCard'
  override name = 'InvalidAgentCardError'
}
