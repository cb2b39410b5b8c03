/**
 * Limits and the defaults of every {@link GuardInit} option.
 *
 * @module
 */

/** Default {@link GuardInit.maxValues}: registered values held at once. */
export const DEFAULT_MAX_VALUES = 100_000
/** Default {@link GuardInit.maxPolicies}. */
export const DEFAULT_MAX_POLICIES = 10_000
/** Default {@link GuardInit.maxBodyChars}: longest body `check`/`screenInbound` accept (1 MiB of UTF-16 units). */
export const DEFAULT_MAX_BODY_CHARS = 1024 * 1024
/** Default {@link GuardInit.sweepIntervalMs}: how often `start()`ed guards drop expired values. */
export const DEFAULT_SWEEP_INTERVAL_MS = 30_000
/** Default {@link GuardInit.minPartialDigits}: contiguous digits of a long number that count as a leak. */
export const DEFAULT_MIN_PARTIAL_DIGITS = 8
/** Default {@link GuardInit.longNumberDigits}: a digit run this long or longer is also matched in part. */
export const DEFAULT_LONG_NUMBER_DIGITS = 12
/** Default {@link GuardInit.partialWordsFraction}: share of a value's words that, contiguous, count as a leak. */
export const DEFAULT_PARTIAL_WORDS_FRACTION = 2 / 3
/** Default {@link GuardInit.secretScan}: run secretlint's recommended preset. */
export const DEFAULT_SECRET_SCAN = true
/** Default {@link GuardInit.entropyScan}: flag high-entropy tokens as `secret/high-entropy`. */
export const DEFAULT_ENTROPY_SCAN = true

/** Longest registered value, characters. */
export const MAX_VALUE_CHARS = 4096
/** Fewest letters/digits a registered value must keep after normalisation (shorter ones match too much). */
export const MIN_VALUE_NORMALIZED = 3
/** Longest label, scope, peer name or service, characters. */
export const MAX_NAME_CHARS = 128
/** Longest category, characters. */
export const MAX_CATEGORY_CHARS = 64
/** Most patterns in one policy's `allow`. */
export const MAX_ALLOW_PATTERNS = 64
/** Longest `ttlMs`: one year. */
export const MAX_TTL_MS = 365 * 24 * 3600 * 1000
/** Most words of a value considered for partial-run windows (longer values: the first this many). */
export const MAX_PARTIAL_WORDS = 64
/** Shortest partial word window, normalised characters (shorter runs are too common to mean a leak). */
export const MIN_PARTIAL_WORD_CHARS = 8
/** How deep encoded tokens are decoded (base64 of URL-encoding of …). */
export const MAX_DECODE_DEPTH = 2
/** Shortest token tried as base64 or hex, characters. */
export const MIN_ENCODED_TOKEN_CHARS = 8

/**
 * In binary content, the detectors other than registered values look only at
 * runs of printable ASCII this long or longer (what `strings(1)` shows): no
 * key, token, address or number they find is shorter (an e-mail address
 * `a@b.io` is 6).
 */
export const MIN_PRINTABLE_RUN = 6
/**
 * In binary content an e-mail address counts only when it looks written, not
 * spelled by chance: all in lower case and at least `lowerCaseChars` long
 * (`bob@acme.io`), or with a lower-case domain and at least `mixedCaseChars`
 * (`Jane.Doe@acme.org`). Random bytes (compressed files, images, model
 * weights) spell an address such as `W@C9.fd` in 4–6 % of MiB, which the
 * default policy blocked; with these rules, 1 MiB in 10,000
 * (`test/bench/guard-binary.bench.ts`, README "Leakage guard").
 */
export const BINARY_EMAIL_MIN_CHARS = Object.freeze({ lowerCaseChars: 10, mixedCaseChars: 12 })
/** Shortest token scored for entropy, characters. */
export const MIN_ENTROPY_TOKEN_CHARS = 24
/** Shannon entropy, bits per character, at or above which a mixed-class token is `secret/high-entropy`. */
export const MIN_ENTROPY_BITS = 4
/** Version of the persisted-values file. */
export const STORE_VERSION = 1

/** Category prefix of secrets: never allowed by a wildcard. */
export const SECRET_PREFIX = 'secret/'
