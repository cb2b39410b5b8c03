/**
 * Wall-clock time in ms since the epoch. Services take one so tests of
 * windows and expiry move time forward instead of sleeping.
 */
export type Clock = () => number

export const systemClock: Clock = () => Date.now()
