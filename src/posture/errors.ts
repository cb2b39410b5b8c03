/**
 * Named errors of the posture module, each with a stable `code`.
 *
 * @module
 */

export class PostureError extends Error {
  static readonly code: string = 'PostureError'
  readonly code: string = 'PostureError'
  override name = 'PostureError'
}

/** The baseline file is not a baseline (bad JSON or shape) */
export class MalformedBaselineError extends PostureError {
  static override readonly code = 'MalformedBaseline'
  override readonly code = 'MalformedBaseline'
  override name = 'MalformedBaselineError'
}
